"""``[[rpz]]`` as configured (resolver.daemon.rpz_feed): the tables checked, zone files
loaded and kept when a new one fails, a failed transfer keeping the zone it had and waiting
its retry time, reloads adding and removing zones in order, and the front door's verdicts
with and without a policy (resolver.daemon.admission)."""
from __future__ import annotations

import asyncio
import socket

import dns.name
import pytest
from test_front_door import CACHED, _door, _query

from resolver.daemon.admission import ALLOWED_ACL
from resolver.daemon.config import load_file
from resolver.daemon.rpz_feed import Feed, Feeds, RpzSource, rpz_sources
from resolver.daemon.rpz_gate import PolicyGate
from resolver.daemon.settings import ConfigError
from resolver.limits import DEFAULT
from resolver.policy.rpz import NXDOMAIN, PASSTHRU, Policy

ZONE = """$TTL 60
@ SOA ns. h. {serial} 100 7 86400 30
@ NS ns.
{records}
"""


def write(path, serial=1, records="bad.example CNAME ."):
    path.write_text(ZONE.format(serial=serial, records=records))
    return str(path)


def test_tables_checked():
    (s,) = rpz_sources([{"name": "rpz.test", "primary": ["192.0.2.1@5353", "192.0.2.2"],
                         "rpz-action-override": "nxdomain", "rpz-log": True}])
    assert s.name == "rpz.test." and s.primaries == (("192.0.2.1", 5353), ("192.0.2.2", 53))
    assert s.action_override == NXDOMAIN and s.log
    (t,) = rpz_sources([{"name": "t.test.", "zonefile": "f", "tags": '"kids" work'}])
    assert t.tags == ("kids", "work") and t.options().tags == {"kids", "work"}
    (m,) = rpz_sources([{"name": "m.test.", "master": "192.0.2.9"}])   # Unbound's old key
    assert m.primaries == (("192.0.2.9", 53),)
    bad = [({"name": "x."}, "needs a zonefile or a primary"),
           ({"name": "x.", "zonefile": "f", "rpz-action-override": "block"},
            "rpz-action-override 'block' is not one of"),
           ({"name": "x.", "zonefile": "f", "rpz-action-override": "cname"},
            "needs rpz-cname-override"),
           ({"name": "x.", "zonefile": "f", "tags": [1]}, "tags: expected tag names"),
           ({"name": "x.", "zonefile": "f", "for-downstream": True},
            "'for-downstream' is not supported"),
           ({"name": "x.", "zonefile": "f", "url": "http://x/"}, "'url' is not supported"),
           ({"name": "x.", "primary": ["not-an-address"]}, "is not a numeric"),
           ({"name": "x.", "zonefile": "f", "rpz-log": "yes"}, "rpz-log: expected true"),
           ({"name": "x.", "zonefile": "f", "colour": 1}, "unknown key 'colour'")]
    for table, message in bad:
        with pytest.raises(ValueError, match=message):
            rpz_sources([table])
    with pytest.raises(ValueError, match="given twice"):
        rpz_sources([{"name": "x.", "zonefile": "f"}, {"name": "X", "zonefile": "g"}])


def test_config_error_names_file_and_line(tmp_path):
    conf = tmp_path / "r.toml"
    conf.write_text('log-level = "INFO"\n\n[[rpz]]\nname = "a.test."\nzonefile = "a"\n\n'
                    '[[rpz]]\nname = "b.test."\nrpz-action-override = "bogus"\nzonefile = "b"\n')
    with pytest.raises(ConfigError, match=rf"^{conf}:9: rpz b.test.: rpz-action-override"):
        load_file(str(conf))


def test_the_same_zones_keep_their_policy_and_a_changed_one_makes_a_new_one(tmp_path):
    """Sources set again (a reload) whose zone files did not change keep the policy made
    before, trigger index and all (nothing made again on the loop); a changed file makes a
    new one, and so does a source taken away or its zone reordered."""
    from resolver.daemon.rpz_feed import Feeds, read_zone_files

    a = RpzSource("a.test.", zonefile=write(tmp_path / "a"))
    b = RpzSource("b.test.", zonefile=write(tmp_path / "b"))
    policies = []
    feeds = Feeds(DEFAULT, policies.append)
    feeds.set_sources([a, b])
    first = policies[-1]
    assert [z.name for z in first.zones] == ["a.test.", "b.test."]
    feeds.set_sources([a, b], read_zone_files([a, b], DEFAULT, feeds.held()))
    assert policies[-1] is first and len(policies) == 2
    write(tmp_path / "b", 2, "bad.example CNAME .")
    feeds.set_sources([a, b], read_zone_files([a, b], DEFAULT, feeds.held()))
    assert policies[-1] is not first and policies[-1].zones[0] is first.zones[0]
    second = policies[-1]
    feeds.set_sources([b, a], read_zone_files([b, a], DEFAULT, feeds.held()))
    assert policies[-1] is not second and [z.name for z in policies[-1].zones] == [
        "b.test.", "a.test."]
    feeds.set_sources([])
    assert policies[-1] is None


def test_zone_file_kept_when_the_new_one_fails(tmp_path):
    path = write(tmp_path / "z")
    changes = []
    f = Feed(RpzSource("rpz.test.", zonefile=path), DEFAULT, lambda: changes.append(1))
    assert f.load_file() and f.zone.serial == 1 and changes == [1]
    (tmp_path / "z").write_text("this is not a zone\n")
    assert not f.load_file() and f.zone.serial == 1 and f.failures == 1
    write(tmp_path / "z", 2, "\n".join(f"n{i}.example CNAME ." for i in range(10)))
    f.limits = DEFAULT.replace(rpz_max_records=5)          # past the bound: refused whole
    assert not f.load_file() and f.zone.serial == 1 and f.failures == 2
    f.limits = DEFAULT
    assert f.load_file() and f.zone.serial == 2 and changes == [1, 1]


def test_an_unchanged_zone_file_keeps_its_zone_and_a_changed_one_is_read(tmp_path):
    """A reload reads each zone file again: the same bytes keep the zone loaded (nothing
    parsed, nothing swapped), other bytes (the serial left as it was) are parsed; a file
    that is not UTF-8 is an error that keeps the zone."""
    from resolver.daemon.rpz_feed import read_zone_files

    path = write(tmp_path / "z")
    source = RpzSource("rpz.test.", zonefile=path)
    changes = []
    f = Feed(source, DEFAULT, lambda: changes.append(1))
    assert f.load_file()
    first = f.zone
    again = read_zone_files([source], DEFAULT, {source: first})[source]
    assert again is first and f.load_file(again) and f.zone is first and changes == [1]
    write(tmp_path / "z", 1, "bad.example CNAME .\nworse.example CNAME .")
    changed = read_zone_files([source], DEFAULT, {source: first})[source]
    assert changed is not first and len(changed) == 2 == len(first) + 1
    assert f.load_file(changed) and f.zone is changed and changes == [1, 1]
    (tmp_path / "z").write_bytes(b"$TTL 300\n@ SOA a. b. 1 1 1 1 1\nx CNAME \xff.\n")
    broken = read_zone_files([source], DEFAULT, {source: changed})[source]
    assert isinstance(broken, ValueError)
    assert not f.load_file(broken) and f.zone is changed
    # a file that includes another is read again whatever its own bytes: the other may change
    (tmp_path / "more").write_text("a.example CNAME .\n")
    write(tmp_path / "z", 3, f"$INCLUDE {tmp_path / 'more'}")
    included = read_zone_files([source], DEFAULT, {source: changed})[source]
    assert len(included) == 1 and f.load_file(included)
    (tmp_path / "more").write_text("a.example CNAME .\nb.example CNAME .\n")
    again = read_zone_files([source], DEFAULT, {source: included})[source]
    assert again is not included and len(again) == 2
    # the directive in any case, anywhere in the file
    write(tmp_path / "z", 4, f"x.example CNAME .\n$include {tmp_path / 'more'}")
    lower = read_zone_files([source], DEFAULT, {source: again})[source]
    (tmp_path / "more").write_text("c.example CNAME .\n")
    assert len(read_zone_files([source], DEFAULT, {source: lower})[source]) == 2


def test_failed_transfer_keeps_the_zone_and_waits_its_retry(tmp_path):
    with socket.socket() as s:              # a port nothing listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    f = Feed(RpzSource("rpz.test.", primaries=(("127.0.0.1", port),)),
             DEFAULT.replace(rpz_transfer_timeout=2.0, rpz_min_refresh=1.0), lambda: None)
    assert f.delays() == (3600.0, 60.0)              # nothing held: an hour, a minute
    held = Feed(RpzSource("rpz.test.", zonefile=write(tmp_path / "z")), DEFAULT, lambda: None)
    held.load_file()
    f.zone = held.zone
    assert asyncio.run(f.transfer()) is False
    assert f.zone is held.zone and f.failures == 1
    assert f.delays() == (100.0, 7.0)                # the zone's SOA refresh and retry
    f.limits = DEFAULT.replace(rpz_min_refresh=50.0)
    assert f.delays() == (100.0, 50.0)               # never sooner than the floor


def test_sources_added_removed_in_order(tmp_path):
    a = RpzSource("a.test.", zonefile=write(tmp_path / "a", records="x.example CNAME ."))
    b = RpzSource("b.test.", zonefile=write(tmp_path / "b",
                                            records="x.example CNAME rpz-passthru."))
    seen = []
    feeds = Feeds(DEFAULT, seen.append)

    def first_action(policy):
        return policy.before(dns.name.from_text("x.example."), None)[0].action
    feeds.set_sources((a, b))
    assert len(seen) == 1 and first_action(seen[-1]) == NXDOMAIN
    feeds.set_sources((b, a))
    assert first_action(seen[-1]) == PASSTHRU
    feeds.set_sources((a,))
    assert [z.name for z in seen[-1].zones] == ["a.test."]
    assert set(feeds.stats()) == {"a.test."}
    feeds.set_sources(())
    assert seen[-1] is None                          # none configured: no policy at all


def test_front_door_sends_a_query_on_while_a_trigger_of_the_policy_can_touch_it(tmp_path):
    door = _door()
    assert door.verdict(_query(), ALLOWED_ACL)[0] == "hit"
    door.policy = PolicyGate(Policy())                  # no trigger: the cached answer
    assert door.verdict(_query(), ALLOWED_ACL)[0] == "hit"
    seen = []
    Feeds(DEFAULT, seen.append).set_sources((RpzSource(
        "a.test.", zonefile=write(tmp_path / "a", records=f"{CACHED.rstrip('.')} CNAME .")),))
    door.policy = PolicyGate(seen[-1])                  # a trigger on the name: the policy's
    assert door.verdict(_query(), ALLOWED_ACL)[0] == "miss"
    seen = []
    Feeds(DEFAULT, seen.append).set_sources((RpzSource(
        "b.test.", zonefile=write(tmp_path / "b", records="32.1.0.0.10.rpz-client-ip CNAME .")),))
    door.policy = PolicyGate(seen[-1])                  # a client-IP trigger: its client's
    assert door.verdict(_query(), ALLOWED_ACL, client=("10.0.0.1", 53))[0] == "miss"
    assert door.verdict(_query(), ALLOWED_ACL, client=("10.0.0.2", 53))[0] == "hit"
    door.policy = None
    assert door.verdict(_query(CACHED), ALLOWED_ACL)[0] == "hit"


def test_the_sample_zones_config_has_policy_zones():
    from pathlib import Path

    from resolver.daemon import config

    sample = Path(__file__).resolve().parents[2] / "docs" / "zones-example.toml"
    cfg = config.build(str(sample))
    assert [(s.name, s.primaries, s.zonefile, s.action_override) for s in cfg.rpz] == [
        ("rpz.corp.example.", (("192.0.2.60", 53), ("192.0.2.61", 5353)), None, None),
        ("local.rpz.", (), "/etc/corenet-resolver/local.rpz", NXDOMAIN)]


def test_cached_nameservers_of_the_closest_zone():
    import ipaddress
    import time

    from resolver.cache.store import Cache
    from resolver.daemon.rpz_gate import cached_nameservers

    c = Cache()
    now = time.monotonic()
    w = lambda text: dns.name.from_text(text).to_wire()        # noqa: E731
    c.rrsets.store_records([(w("example.org."), 2, 1, 300, w("ns1.hoster.net.")),
                            (w("example.org."), 2, 1, 300, w("NS2.hoster.net."))], 3, now)
    c.rrsets.store_records([(w("ns1.hoster.net."), 1, 1, 300, bytes([192, 0, 2, 53]))], 3, now)
    c.rrsets.store_records([(w("org."), 2, 1, 300, w("a.org-servers.net."))], 3, now)
    names, addrs = cached_nameservers(c.rrsets, dns.name.from_text("a.b.example.org."), now)
    assert sorted(n.to_text().lower() for n in names) == ["ns1.hoster.net.", "ns2.hoster.net."]
    assert addrs == [ipaddress.ip_address("192.0.2.53")]
    names, addrs = cached_nameservers(c.rrsets, dns.name.from_text("www.other.org."), now)
    assert [n.to_text() for n in names] == ["a.org-servers.net."] and addrs == []
    assert cached_nameservers(c.rrsets, dns.name.from_text("x.test."), now) == ((), ())
    assert cached_nameservers(c.rrsets, dns.name.from_text("a.example.org."), now + 301) \
        == ((), ())                                    # expired


def test_workers_stats_merge_counts_and_keep_each_zone_serial():
    from resolver.daemon.metrics import merge

    def worker(serial, triggers, nxdomain):
        return {"rpz": {"zones": {"rpz.test.": {"loaded": True, "serial": serial,
                                               "triggers": triggers, "transfers": 1,
                                               "failures": 0}},
                        "matches": {"rpz.test.": {"nxdomain": nxdomain}}}}
    out = merge([worker(7, 100, 3), worker(7, 100, 4)])
    zone = out["rpz"]["zones"]["rpz.test."]
    assert zone["serial"] == 7 and zone["triggers"] == 100 and zone["transfers"] == 2
    assert out["rpz"]["matches"]["rpz.test."]["nxdomain"] == 7
