"""Unbound's views (``view:``, ``access-control-view``): the local zones a client gets by its
address. Sans-IO, ``LocalZones.answer`` on each rule of Unbound's local_zones_answer with
a view; then the daemon and the real Unbound, given the same unbound.conf lines and the
same lab, asked the same questions from clients of each view (and of none), over UDP then
over TCP, the second round answered from the caches: the same rcodes and records."""
from __future__ import annotations

import dns.name
import pytest

from resolver.daemon.config_reader import ConfigError
from resolver.daemon.values import access_control_views
from resolver.daemon.zone_tables import view
from resolver.zones import DROP, LocalZone, View, Zones

A, PTR = 1, 12


def w(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def said(zones: Zones, host: str, name: str, rdtype: int = A):
    """What the local zones answer ``host`` for ``name``: "resolve", "drop", or (rcode,
    answer addresses)."""
    found = zones.local_zones.answer(w(name), rdtype, (host, 53000))
    if found is None:
        return "resolve"
    if found is DROP:
        return "drop"
    rcode, answer, _ = found
    return rcode, sorted(".".join(str(b) for b in r[4]) if r[1] == A else r[4]
                         for r in answer)


def zones_with(*views: View, clients=(), local=(), data=()) -> Zones:
    return Zones(local=local, local_data=data, defaults=True, views=views,
                 view_clients=[("127.0.0.0/8", None), *clients])


GLOBAL = (LocalZone("g.example.", "static", ("a.g.example. A 192.0.2.1",)),)


@pytest.mark.parametrize("kind, name, want", [
    # transparent and inform zones hold only names with local data of theirs
    ("transparent", "a.z.example.", (0, ["10.0.0.1"])),
    ("transparent", "other.z.example.", "resolve"),
    ("inform", "other.z.example.", "resolve"),
    # typetransparent: only the types it has
    ("typetransparent", "a.z.example.", (0, ["10.0.0.1"])),
    # never held: resolved (the view is not view-first)
    ("noview", "a.z.example.", "resolve"),
    ("always_transparent", "a.z.example.", "resolve"),
    ("block_a", "a.z.example.", "resolve"),
    # held, as the global zones would answer
    ("static", "other.z.example.", (3, [])),
    ("refuse", "other.z.example.", (5, [])),
    ("deny", "other.z.example.", "drop"),
    ("always_nxdomain", "a.z.example.", (3, [])),
])
def test_which_zones_of_a_view_hold_a_question(kind, name, want):
    z = zones_with(View("v", (LocalZone("z.example.", kind, ("a.z.example. A 10.0.0.1",)),)),
                   clients=[("127.0.0.2/32", "v")])
    assert said(z, "127.0.0.2", name) == want


def test_view_first_and_views_without_zones_fall_back_to_the_global_zones():
    inside = View("inside", (LocalZone("z.example.", "static", ("a.z.example. A 10.0.0.1",)),))
    first = View("first", inside.local, first=True)
    bare = View("bare")
    z = zones_with(inside, first, bare, local=GLOBAL, clients=[
        ("127.0.0.2/32", "inside"), ("127.0.0.3/32", "first"), ("127.0.0.4/32", "bare"),
        ("127.0.1.0/24", "inside"), ("127.0.1.8/29", None)])
    # the view's own zone, for its clients only
    assert said(z, "127.0.0.2", "a.z.example.") == (0, ["10.0.0.1"])
    assert said(z, "127.0.0.3", "a.z.example.") == (0, ["10.0.0.1"])
    assert said(z, "127.0.0.1", "a.z.example.") == "resolve"
    assert said(z, "127.0.0.4", "a.z.example.") == "resolve"
    # a global zone: resolved for a view with zones, answered for view-first and bare
    assert said(z, "127.0.0.2", "a.g.example.") == "resolve"
    assert said(z, "127.0.0.3", "a.g.example.") == (0, ["192.0.2.1"])
    assert said(z, "127.0.0.4", "a.g.example.") == (0, ["192.0.2.1"])
    assert said(z, "127.0.0.1", "a.g.example.") == (0, ["192.0.2.1"])
    # the longest prefix decides: an access-control network inside a view's has none
    assert said(z, "127.0.1.1", "a.z.example.") == (0, ["10.0.0.1"])
    assert said(z, "127.0.1.9", "a.z.example.") == "resolve"
    # an IPv4 client on an IPv6 socket: its IPv4 address decides, as the ACL's
    assert said(z, "::ffff:127.0.0.2", "a.z.example.") == (0, ["10.0.0.1"])
    # no address (a Unix socket's peer): the global zones
    assert z.local_zones.answer(w("a.g.example."), A, None)[0] == 0


def test_default_zones_in_views():
    """Unless view-first, a view with zones serves the default zones too (the AS112 ones
    included, even with unblock-lan-zones globally), less those it names nodefault; a
    view-first view serves none of them, and its nodefault zones keep their names from
    the global defaults."""
    mine = LocalZone("z.example.", "static")
    plain = View("plain", (mine, LocalZone("test.", "nodefault")))
    first = View("first", (mine, LocalZone("onion.", "nodefault")), first=True)
    z = Zones(defaults=True, unblock_lan_zones=True, views=(plain, first), view_clients=[
        ("127.0.0.0/8", None), ("127.0.0.2/32", "plain"), ("127.0.0.3/32", "first")])
    as112 = "1.0.0.10.in-addr.arpa."
    assert said(z, "127.0.0.2", as112, PTR)[0] == 3
    assert said(z, "127.0.0.1", as112, PTR) == "resolve"     # unblocked globally
    assert said(z, "127.0.0.2", "www.test.") == "resolve"     # nodefault in the view
    assert said(z, "127.0.0.1", "www.test.")[0] == 3
    assert said(z, "127.0.0.2", "localhost.") == (0, ["127.0.0.1"])
    assert said(z, "127.0.0.3", "localhost.") == (0, ["127.0.0.1"])   # the global one
    assert said(z, "127.0.0.3", "x.onion.") == "resolve"
    assert said(z, "127.0.0.1", "x.onion.")[0] == 3


def test_config_errors_name_the_view():
    with pytest.raises(ValueError, match="no view with name: nowhere"):
        Zones(views=[View("v")], view_clients=[("10.0.0.0/8", "nowhere")])
    with pytest.raises(ValueError, match="view 'v' is given twice"):
        Zones(views=[View("v"), View("v")], view_clients=[("10.0.0.0/8", "v")])
    with pytest.raises(ValueError, match="view v: local-zone"):
        view({"name": "v", "local-zone": ["z.example. nosuchtype"]})
    with pytest.raises(ConfigError, match="NETBLOCK VIEW"):
        access_control_views(["10.0.0.0/8"], "access-control-view")
    v = view({"name": "v", "view-first": True, "local-zone": "z.example. static",
              "local-data": ["a.z.example. A 10.0.0.1"],
              "local-data-ptr": ["10.0.0.1 a.z.example."]})
    assert v.first and v.local == (LocalZone("z.example.", "static"),)
    assert len(v.local_data) == 2


# ---- the daemon beside Unbound -------------------------------------------------------------
#: one global zone that hides a lab name, and three views: one with zones of its own
#: (also the view of 127.0.1.0/24, less an access-control network inside it), one
#: view-first, one with none
CONF = """
  local-zone: "mail.example.com." static
  local-data: "mail.example.com. A 192.0.2.99"
  access-control-view: 127.0.0.2/32 inside
  access-control-view: 127.0.0.3/32 first
  access-control-view: 127.0.0.4/32 bare
  access-control-view: 127.0.1.0/24 inside
  access-control: 127.0.1.8/29 allow
view:
  name: "inside"
  local-zone: "www.example.com." static
  local-data: "www.example.com. A 10.0.0.5"
  local-zone: "example.net." transparent
  local-data: "host.example.net. A 10.0.0.7"
  local-zone: "v4only.example.com." noview
  local-zone: "ref.example.com." refuse
  local-data: "solo.example.org. A 10.0.0.9"
  local-data-ptr: "10.0.0.5 www.example.com."
view:
  name: "first"
  view-first: yes
  local-zone: "sip.example.com." static
  local-data: "sip.example.com. A 10.0.0.50"
view:
  name: "bare"
"""
CLIENTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.1.1", "127.0.1.9")
QUESTIONS = [("www.example.com.", "A"), ("mail.example.com.", "A"),
             ("host.example.net.", "A"), ("www.example.net.", "A"),
             ("v4only.example.com.", "A"), ("sip.example.com.", "A"), ("localhost.", "A"),
             ("1.0.0.10.in-addr.arpa.", "PTR"), ("5.0.0.10.in-addr.arpa.", "PTR"),
             ("x.ref.example.com.", "A"), ("solo.example.org.", "A")]


def test_the_same_answers_as_unbound_for_the_same_views(tmp_path):
    from ci_policy import installed
    from daemon_proc import answers_by_client, beside_unbound

    installed("unbound", "unbound")
    conf = tmp_path / "views.conf"
    conf.write_text("server:\n" + CONF)
    with beside_unbound(tmp_path, "--config", str(conf), unbound_extra=CONF) as (ub, d):
        for tcp in (False, True):           # the second round (TCP): from the caches
            found = [{(src, name): a for (src, name, _), a in
                      answers_by_client(port, CLIENTS, QUESTIONS, tcp).items()}
                     for port in (d.port, ub.port)]
            ours, theirs = found
            assert ours == theirs, {k: (ours[k], theirs[k]) for k in ours
                                    if ours[k] != theirs.get(k)}
        # what the views did, so that the two servers are not agreeing on something else
        assert ours[("127.0.0.2", "www.example.com.")] == ("NOERROR", ["10.0.0.5"])
        assert ours[("127.0.1.1", "www.example.com.")] == ("NOERROR", ["10.0.0.5"])
        assert ours[("127.0.1.9", "www.example.com.")] == ("NOERROR",
                                                            ["192.0.2.1", "192.0.2.11"])
        assert ours[("127.0.0.1", "mail.example.com.")] == ("NOERROR", ["192.0.2.99"])
        assert ours[("127.0.0.2", "mail.example.com.")] == ("NOERROR", ["192.0.2.25"])
        assert ours[("127.0.0.3", "mail.example.com.")] == ("NOERROR", ["192.0.2.99"])
        assert ours[("127.0.0.3", "sip.example.com.")] == ("NOERROR", ["10.0.0.50"])
        assert ours[("127.0.0.2", "host.example.net.")] == ("NOERROR", ["10.0.0.7"])
        assert ours[("127.0.0.1", "host.example.net.")][0] == "NXDOMAIN"
        assert ours[("127.0.0.2", "v4only.example.com.")] == ("NOERROR", ["192.0.2.2"])
        assert ours[("127.0.0.2", "5.0.0.10.in-addr.arpa.")] == ("NOERROR",
                                                                  ["www.example.com."])
        assert ours[("127.0.0.2", "x.ref.example.com.")] == ("REFUSED", [])
        assert ours[("127.0.0.2", "solo.example.org.")] == ("NOERROR", ["10.0.0.9"])
        assert ours[("127.0.0.1", "x.ref.example.com.")][0] != "REFUSED"


def test_import_unbound_writes_the_views_the_unbound_conf_is_served_with(tmp_path):
    """The TOML that ``import-unbound`` writes for the views, with nothing left out, makes
    the same local zones for every client as the unbound.conf served as it is."""
    from daemon_proc import served_and_imported

    served, imported = served_and_imported(tmp_path, CONF, "[[view]]")
    kinds = {"A": A, "PTR": PTR}
    for host in CLIENTS:
        for name, rdtype in QUESTIONS:
            assert said(served, host, name, kinds[rdtype]) == \
                said(imported, host, name, kinds[rdtype]), (host, name)
    assert said(imported, "127.0.1.1", "www.example.com.") == (0, ["10.0.0.5"])
    assert said(imported, "127.0.0.3", "mail.example.com.") == (0, ["192.0.2.99"])
