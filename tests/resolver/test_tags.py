"""Unbound's tags (``define-tag``, ``local-zone-tag``, ``access-control-tag``,
``access-control-tag-action``, ``access-control-tag-data``, an ``rpz:`` zone's ``tags:``) and
``local-zone-override``: which local zones and policy zones a client gets by its address, and
what they answer it. Sans-IO, ``LocalZones.answer`` on each rule of Unbound's
local_zones_answer with tags and overrides; then the daemon and the real Unbound, given the
same unbound.conf lines and the same lab, asked the same questions from clients of each tag
(and of none), over UDP then over TCP, the second round answered from the caches: the same
rcodes and records."""
from __future__ import annotations

import ipaddress

import dns.name
import pytest

from resolver.daemon.config_reader import ConfigError
from resolver.daemon.values import (access_control_tag_actions, access_control_tag_datas,
                                    access_control_tags, local_zone_tags, tag_names)
from resolver.zones import DROP, Alias, LocalZone, Tags, Zones

A, AAAA, CNAME = 1, 28, 5


def w(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def said(zones: Zones, host: str, name: str, rdtype: int = A):
    """What the local zones answer ``host`` for ``name``: "resolve", "drop", or (rcode,
    answer records as text)."""
    found = zones.local_zones.answer(w(name), rdtype, (host, 53000))
    if found is None:
        return "resolve"
    if found is DROP:
        return "drop"
    rcode, answer, _ = found
    return rcode, sorted(".".join(str(b) for b in r[4]) if r[1] == A else r[4].hex()
                         for r in answer)


def tagged(*local: LocalZone, zones=(), clients=(), actions=(), datas=(),
           names=("kids", "work", "guest")) -> Zones:
    return Zones(local=local, defaults=True, view_clients=[("127.0.0.0/8", None)],
                 tags=Tags(names, zones, clients, actions, datas))


ADS = LocalZone("ads.example.", "always_nxdomain")
PARENT = LocalZone("example.", "static", ("example. A 192.0.2.1",))


def test_a_tagged_zone_answers_only_the_clients_that_share_a_tag():
    refusing = LocalZone("ads.example.", "always_refuse")
    z = tagged(refusing, PARENT, zones=[("ads.example.", ("kids", "guest"))],
               clients=[("127.0.0.2/32", ("kids",)), ("127.0.0.3/32", ("work",)),
                        ("127.0.0.4/32", ("work", "guest"))])
    assert said(z, "127.0.0.2", "x.ads.example.") == (5, [])        # kids: the zone
    assert said(z, "127.0.0.4", "x.ads.example.") == (5, [])        # guest: the zone
    # no shared tag, or none at all: the zone above answers, as if the tagged one were
    # not there (static, no data at the name: NXDOMAIN; its apex data)
    for host in ("127.0.0.3", "127.0.0.1"):
        assert said(z, host, "x.ads.example.") == (3, [])
        assert said(z, host, "ads.example.") == (3, [])
        assert said(z, host, "example.") == (0, ["192.0.2.1"])
    # without a zone above, the question is resolved
    lone = tagged(ADS, zones=[("ads.example.", ("kids",))],
                  clients=[("127.0.0.2/32", ("kids",))])
    assert said(lone, "127.0.0.1", "x.ads.example.") == "resolve"
    assert said(lone, "127.0.0.2", "x.ads.example.") == (3, [])
    # a question with no client (the library's) has no tags
    assert lone.local_zones.lookup(w("x.ads.example."), A) is None


def test_the_first_shared_tag_in_define_tag_order_decides_the_action():
    zone = LocalZone("z.example.", "static", ("a.z.example. A 10.0.0.1",))
    z = tagged(zone, zones=[("z.example.", ("work", "kids"))],
               clients=[("127.0.0.2/32", ("kids", "work")), ("127.0.0.3/32", ("work",)),
                        ("127.0.0.4/32", ("guest", "work"))],
               actions=[("127.0.0.2/32", "work", "always_refuse"),
                        ("127.0.0.3/32", "work", "always_refuse"),
                        ("127.0.0.4/32", "work", "deny")])
    # kids comes first in define-tag: it decides, and has no action for that network,
    # so the zone's own type answers (the work action is not looked at)
    assert said(z, "127.0.0.2", "a.z.example.") == (0, ["10.0.0.1"])
    assert said(z, "127.0.0.3", "a.z.example.") == (5, [])
    # deny: the zone's data, else no answer
    assert said(z, "127.0.0.4", "a.z.example.") == (0, ["10.0.0.1"])
    assert said(z, "127.0.0.4", "b.z.example.") == "drop"
    assert said(z, "127.0.0.2", "b.z.example.") == (3, [])


def test_tag_data_is_what_a_redirect_zone_answers_for_its_type():
    red = LocalZone("red.example.", "redirect", ("red.example. A 192.0.2.7",))
    z = tagged(red, zones=[("red.example.", ("kids", "work"))],
               clients=[("127.0.0.2/32", ("kids",)), ("127.0.0.3/32", ("work",)),
                        ("127.0.0.5/32", ("kids",))],
               actions=[("127.0.0.5/32", "kids", "static")],
               datas=[("127.0.0.2/32", "kids", "A 10.9.9.9"),
                      ("127.0.0.2/32", "kids", "A 10.9.9.8"),
                      ("127.0.0.3/32", "work", "CNAME safe.example."),
                      ("127.0.0.5/32", "kids", "A 10.9.9.7")])
    assert said(z, "127.0.0.2", "x.red.example.") == (0, ["10.9.9.8", "10.9.9.9"])
    # no data of the type: the zone's own (its apex has no AAAA: NODATA)
    assert said(z, "127.0.0.2", "x.red.example.", AAAA) == (0, [])
    # a CNAME answers every type, with the question's name as its owner: itself for
    # CNAME, an alias to resolve for the others
    found = z.local_zones.answer(w("x.red.example."), CNAME, ("127.0.0.3", 53000))
    assert found[0] == 0 and [(r[0], r[1]) for r in found[1]] == [(w("x.red.example."),
                                                                    CNAME)]
    found = z.local_zones.answer(w("x.red.example."), AAAA, ("127.0.0.3", 53000))
    assert isinstance(found, Alias) and found.target == w("safe.example.")
    assert found.record[:2] == (w("x.red.example."), CNAME)
    # the data is a redirect's: a tag action that makes the zone static leaves it out
    assert said(z, "127.0.0.5", "x.red.example.") == (3, [])
    # a client without tag data gets the zone's
    assert said(z, "127.0.0.1", "x.red.example.") == "resolve"


def test_the_most_specific_network_decides_the_tags():
    z = tagged(ADS, zones=[("ads.example.", ("kids",))],
               clients=[("127.0.1.0/24", ("kids",)), ("127.0.1.8/30", ("work",))],
               actions=[("127.0.2.0/24", "kids", "refuse")])
    assert said(z, "127.0.1.1", "x.ads.example.") == (3, [])
    assert said(z, "127.0.1.9", "x.ads.example.") == "resolve"      # work only
    # an access-control network inside a tagged one: no tags
    plain = Zones(local=(ADS,), defaults=True,
                  view_clients=[("127.0.0.0/8", None), ("127.0.1.128/25", None)],
                  tags=Tags(("kids",), (("ads.example.", ("kids",)),),
                            (("127.0.1.0/24", ("kids",)),)))
    assert said(plain, "127.0.1.1", "x.ads.example.") == (3, [])
    assert said(plain, "127.0.1.200", "x.ads.example.") == "resolve"
    # a network with an action and no tags shares none with the zone
    assert said(z, "127.0.2.1", "x.ads.example.") == "resolve"


def test_an_override_gives_a_zone_its_type_for_a_network_before_the_tags():
    zone = LocalZone("z.example.", "static", ("a.z.example. A 10.0.0.1",))
    z = Zones(local=(zone, ADS), defaults=True, view_clients=[("127.0.0.0/8", None)],
              tags=Tags(("kids",), (("z.example.", ("kids",)),),
                        (("127.0.0.2/32", ("kids",)), ("127.0.0.4/32", ("kids",))),
                        (("127.0.0.2/32", "kids", "refuse"), ("127.0.0.4/32", "kids",
                                                              "refuse"))),
              overrides=[("z.example.", "127.0.0.0/30", "always_nxdomain"),
                         ("z.example.", "127.0.0.2/32", "transparent"),
                         ("ads.example.", "127.0.0.5/32", "transparent")])
    assert said(z, "127.0.0.2", "a.z.example.") == (0, ["10.0.0.1"])  # the /32, not the tag
    assert said(z, "127.0.0.2", "b.z.example.") == "resolve"
    assert said(z, "127.0.0.4", "b.z.example.") == (5, [])              # the tag's action
    assert said(z, "127.0.0.5", "x.ads.example.") == "resolve"           # a zone of no tag
    assert said(z, "127.0.0.6", "x.ads.example.") == (3, [])
    # an override is the client's: a question without one sees the zone's type
    assert z.local_zones.lookup(w("x.ads.example."), A) == (3, [], [])
    with pytest.raises(ValueError, match="no local-zone other.example. to override"):
        Zones(local=(ADS,), overrides=[("other.example.", "10.0.0.0/8", "static")])
    with pytest.raises(ValueError, match="'nosuch' is not one of"):
        Zones(local=(ADS,), overrides=[("ads.example.", "10.0.0.0/8", "nosuch")])


@pytest.mark.parametrize("make, message", [
    (lambda: tagged(ADS, zones=[("ads.example.", ("nosuch",))]),
     "local-zone-tag ads.example.: tag 'nosuch' is not defined"),
    (lambda: tagged(ADS, zones=[("other.example.", ("kids",))]),
     "no local-zone other.example."),
    (lambda: tagged(ADS, clients=[("10.0.0.0/8", ("nosuch",))]),
     "access-control-tag 10.0.0.0/8: tag 'nosuch'"),
    (lambda: tagged(ADS, actions=[("10.0.0.0/8", "kids", "nosuchtype")]),
     "'nosuchtype' is not one of"),
    (lambda: tagged(ADS, datas=[("10.0.0.0/8", "kids", "A not-an-address")]),
     "local-data"),
    (lambda: tagged(ADS, datas=[("10.0.0.0/8", "kids", "A 10.0.0.1"),
                                ("10.0.0.0/8", "kids", "CNAME x.example.")]),
     "must not coexist"),
])
def test_config_errors_name_the_line(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_settings_read_unbounds_lines():
    assert tag_names(['"kids work"', "guest kids"], "define-tag") == ("kids", "work", "guest")
    assert access_control_tags(['10.0.0.0/8 "kids work"'], "t") == (
        (ipaddress.ip_network("10.0.0.0/8"), ("kids", "work")),)
    assert access_control_tag_actions(["10.0.0.0/8 kids always_refuse"], "t") == (
        (ipaddress.ip_network("10.0.0.0/8"), "kids", "always_refuse"),)
    assert access_control_tag_datas(['10.0.0.0/8 kids TXT "a b"',
                                     '10.0.0.0/8 "kids" "A 10.0.0.1"'], "t") == (
        (ipaddress.ip_network("10.0.0.0/8"), "kids", 'TXT "a b"'),
        (ipaddress.ip_network("10.0.0.0/8"), "kids", "A 10.0.0.1"))
    assert local_zone_tags(['ads.example. "kids work"'], "t") == (
        ("ads.example.", ("kids", "work")),)
    for convert, bad in ((tag_names, "kids,work"), (access_control_tags, "10.0.0.0/8"),
                         (access_control_tag_actions, "10.0.0.0/8 kids"),
                         (access_control_tag_datas, "10.0.0.0/8 kids"),
                         (local_zone_tags, "ads.example.")):
        with pytest.raises(ConfigError):
            convert([bad], "t")


def test_tag_networks_are_allowed_unless_access_control_says(tmp_path):
    from resolver.daemon.acl import ACL
    from resolver.daemon.config import build
    from resolver.daemon.server import acl_entries

    conf = tmp_path / "tags.toml"
    conf.write_text('define-tag = ["kids"]\n'
                    'access-control-tag = ["10.1.0.0/16 kids"]\n'
                    'access-control-tag-data = ["10.2.0.0/16 kids A 10.0.0.1"]\n'
                    'access-control = ["10.2.0.0/16 refuse"]\n')
    acl = ACL(acl_entries(build(str(conf))))
    assert acl.allows("10.1.2.3") and not acl.allows("10.2.2.3")
    assert not acl.allows("10.3.2.3")


# ---- the daemon beside Unbound -------------------------------------------------------------
#: tagged zones over names of the lab: one hidden from kids, one answered (or refused, by
#: the work tag's action) for work and guests, a redirect with data of the kids' own
CONF = """
  define-tag: "kids work guest"
  local-zone: "www.example.com." always_nxdomain
  local-zone-tag: "www.example.com." "kids"
  local-zone: "mail.example.com." static
  local-data: "mail.example.com. A 192.0.2.99"
  local-zone-tag: "mail.example.com." "work guest"
  local-zone: "example.net." redirect
  local-data: "example.net. A 10.0.0.7"
  local-zone-tag: "example.net." "kids work"
  access-control-tag: 127.0.0.2/32 "kids"
  access-control-tag: 127.0.0.3/32 "work"
  access-control-tag: 127.0.0.4/32 "kids work"
  access-control-tag-action: 127.0.0.3/32 work always_refuse
  access-control-tag-data: 127.0.0.2/32 kids "A 10.9.9.9"
  access-control-tag: 127.0.1.0/24 "guest"
  access-control: 127.0.1.8/29 allow
  local-zone-override: "mail.example.com." 127.0.1.0/28 always_nxdomain
  local-zone: "v4only.example.com." transparent
  local-zone-override: "v4only.example.com." 127.0.0.3/32 always_nxdomain
"""
CLIENTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.1.1", "127.0.1.9")
QUESTIONS = [("www.example.com.", "A"), ("mail.example.com.", "A"),
             ("host.example.net.", "A"), ("host.example.net.", "AAAA"),
             ("v4only.example.com.", "A")]


def test_the_same_answers_as_unbound_for_the_same_tags(tmp_path):
    from ci_policy import installed
    from daemon_proc import answers_by_client, beside_unbound

    installed("unbound", "unbound")
    conf = tmp_path / "tags.conf"
    conf.write_text("server:\n" + CONF)
    with beside_unbound(tmp_path, "--config", str(conf), unbound_extra=CONF) as (ub, d):
        for tcp in (False, True):           # the second round (TCP): from the caches
            ours, theirs = (answers_by_client(port, CLIENTS, QUESTIONS, tcp)
                            for port in (d.port, ub.port))
            assert ours == theirs, {k: (ours[k], theirs[k]) for k in ours
                                    if ours[k] != theirs.get(k)}
        # what the tags did, so that the two servers are not agreeing on something else
        assert ours[("127.0.0.2", "www.example.com.", "A")] == ("NXDOMAIN", [])
        assert ours[("127.0.0.1", "www.example.com.", "A")] == ("NOERROR",
                                                                ["192.0.2.1", "192.0.2.11"])
        assert ours[("127.0.0.3", "mail.example.com.", "A")] == ("REFUSED", [])
        # an override comes before the tags (mail's, for 127.0.1.0/28), and applies to a
        # zone of no tag (v4only's, for 127.0.0.3), whose other clients resolve the name
        assert ours[("127.0.1.1", "mail.example.com.", "A")] == ("NXDOMAIN", [])
        assert ours[("127.0.0.3", "v4only.example.com.", "A")] == ("NXDOMAIN", [])
        assert ours[("127.0.0.1", "v4only.example.com.", "A")] == ("NOERROR", ["192.0.2.2"])
        assert ours[("127.0.1.9", "mail.example.com.", "A")] == ("NOERROR", ["192.0.2.25"])
        assert ours[("127.0.0.2", "host.example.net.", "A")] == ("NOERROR", ["10.9.9.9"])
        assert ours[("127.0.0.4", "host.example.net.", "A")] == ("NOERROR", ["10.0.0.7"])
        assert ours[("127.0.0.3", "host.example.net.", "A")] == ("REFUSED", [])
        assert ours[("127.0.0.1", "host.example.net.", "A")][0] == "NXDOMAIN"


def test_an_override_alone_keeps_the_cache_from_its_clients_as_unbound(tmp_path):
    """With overrides and no tags or views, a name one client resolves (and the cache
    holds) is still answered by the local zone to a client the zone's override covers."""
    from ci_policy import installed
    from daemon_proc import answers_by_client, beside_unbound

    installed("unbound", "unbound")
    lines = ('  local-zone: "example.com." transparent\n'
             '  local-zone-override: "example.com." 127.0.0.3/32 always_nxdomain\n')
    conf = tmp_path / "override.conf"
    conf.write_text("server:\n" + lines)
    questions = [("www.example.com.", "A"), ("mail.example.com.", "A")]
    with beside_unbound(tmp_path, "--config", str(conf), unbound_extra=lines) as (ub, d):
        for tcp in (False, True):           # the second round (TCP): from the caches
            ours, theirs = (answers_by_client(port, ("127.0.0.1", "127.0.0.3"), questions,
                                              tcp) for port in (d.port, ub.port))
            assert ours == theirs, {k: (ours[k], theirs[k]) for k in ours
                                    if ours[k] != theirs.get(k)}
    assert ours[("127.0.0.3", "www.example.com.", "A")] == ("NXDOMAIN", [])
    assert ours[("127.0.0.1", "mail.example.com.", "A")] == ("NOERROR", ["192.0.2.25"])


def test_import_unbound_writes_the_tags_the_unbound_conf_is_served_with(tmp_path):
    """The TOML that ``import-unbound`` writes for the tags, with nothing left out, makes
    the same local zones for every client as the unbound.conf served as it is."""
    from daemon_proc import served_and_imported

    served, imported = served_and_imported(tmp_path, CONF, "local-zone-tag = ")
    kinds = {"A": A, "AAAA": AAAA}
    for host in CLIENTS:
        for name, rdtype in QUESTIONS:
            assert said(served, host, name, kinds[rdtype]) == \
                said(imported, host, name, kinds[rdtype]), (host, name)
    assert said(imported, "127.0.0.2", "www.example.com.") == (3, [])
    assert said(imported, "127.0.0.3", "mail.example.com.") == (5, [])
    assert said(imported, "127.0.1.1", "mail.example.com.") == (3, [])
    assert said(imported, "127.0.0.3", "v4only.example.com.") == (3, [])


#: a tagged policy zone (a trigger on a query's name, one on an answer's address) before
#: an untagged one, one of whose names a tagged local zone answers first for its clients,
#: even for a client that a client-IP trigger blocks
RPZ_HEAD = "$TTL 60\n@ SOA ns.{o} hostmaster.{o} 1 3600 600 86400 30\n@ NS ns.{o}\n"
RPZ_KIDS = "www.example.com CNAME .\n32.25.2.0.192.rpz-ip CNAME .\n"
RPZ_ALL = ("v4only.example.com CNAME .\nmail.example.com CNAME .\n"
           "32.3.0.0.127.rpz-client-ip CNAME .\n")
RPZ_QUESTIONS = [("www.example.com.", "A"), ("mail.example.com.", "A"),
                 ("v4only.example.com.", "A")]


def test_a_tagged_policy_zone_applies_to_its_tags_clients_as_unbounds(tmp_path):
    from ci_policy import installed
    from daemon_proc import answers_by_client, beside_unbound

    installed("unbound", "unbound")
    lines = ['  define-tag: "kids work"', '  access-control-tag: 127.0.0.2/32 "kids"',
             '  access-control-tag: 127.0.0.3/32 "work"',
             '  local-zone: "mail.example.com." static',
             '  local-data: "mail.example.com. A 192.0.2.99"',
             '  local-zone-tag: "mail.example.com." "work"',
             '  module-config: "respip iterator"']
    for origin, records, tags in (("kids.rpz.", RPZ_KIDS, "kids"), ("all.rpz.", RPZ_ALL, "")):
        path = tmp_path / f"{origin}zone"
        path.write_text(RPZ_HEAD.format(o=origin) + records)
        lines += ["rpz:", f"  name: {origin}", f'  zonefile: "{path}"']
        lines += [f'  tags: "{tags}"'] if tags else []
    conf = tmp_path / "rpz-tags.conf"
    conf.write_text("server:\n" + "\n".join(lines) + "\n")
    clients = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    with beside_unbound(tmp_path, "--config", str(conf),
                        unbound_extra="\n".join(lines)) as (ub, d):
        for tcp in (False, True):
            ours, theirs = (answers_by_client(port, clients, RPZ_QUESTIONS, tcp)
                            for port in (d.port, ub.port))
            assert ours == theirs, {k: (ours[k], theirs[k]) for k in ours
                                    if ours[k] != theirs.get(k)}
    assert ours[("127.0.0.2", "www.example.com.", "A")] == ("NXDOMAIN", [])
    assert ours[("127.0.0.1", "www.example.com.", "A")][1] == ["192.0.2.1", "192.0.2.11"]
    assert ours[("127.0.0.3", "www.example.com.", "A")] == ("NXDOMAIN", [])   # client IP
    # the local zones come before the policy, each client's own
    assert ours[("127.0.0.3", "mail.example.com.", "A")] == ("NOERROR", ["192.0.2.99"])
    assert ours[("127.0.0.1", "mail.example.com.", "A")] == ("NXDOMAIN", [])
    for client in clients:
        assert ours[(client, "v4only.example.com.", "A")] == ("NXDOMAIN", [])


def test_a_policy_zone_tag_must_be_defined(tmp_path):
    from resolver.daemon.config import build

    zone = tmp_path / "p.zone"
    zone.write_text(RPZ_HEAD.format(o="p.rpz.") + RPZ_ALL)
    conf = tmp_path / "c.toml"
    conf.write_text(f'define-tag = ["kids"]\n[[rpz]]\nname = "p.rpz."\nzonefile = "{zone}"\n'
                    'tags = "kids nosuch"\n')
    with pytest.raises(ConfigError, match="rpz p.rpz.: tags: tag 'nosuch' is not defined"):
        build(str(conf))
