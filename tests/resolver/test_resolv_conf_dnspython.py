"""resolv.conf files (temporary ones, never the host's) read by resolver.sync.Resolver and by
dnspython's own dns.resolver.Resolver give the same settings, or the same error."""
from __future__ import annotations

import re

import dns.name
import dns.resolver
import pytest

from resolver import sync

VARIANTS = {
    "plain": "nameserver 192.0.2.53\n",
    "several and IPv6": "nameserver 192.0.2.53\nnameserver 2001:db8::53\n"
                        "nameserver 192.0.2.54\n",
    "search list": "nameserver 192.0.2.53\nsearch corp.example. lab.example example.org\n",
    "the last search wins": "search a.example\nnameserver 192.0.2.53\nsearch b.example\n",
    "domain after search": "nameserver 192.0.2.53\nsearch a.example\ndomain d.example\n",
    "search after domain": "nameserver 192.0.2.53\ndomain d.example\nsearch a.example\n",
    "ndots": "nameserver 192.0.2.53\noptions ndots:3\n",
    "ndots zero": "nameserver 192.0.2.53\noptions ndots:0\n",
    "ndots malformed": "nameserver 192.0.2.53\noptions ndots:x ndots\n",
    "timeout": "nameserver 192.0.2.53\noptions timeout:1\n",
    "timeout malformed": "nameserver 192.0.2.53\noptions timeout:soon\n",
    "rotate": "nameserver 192.0.2.53\nnameserver 192.0.2.54\noptions rotate\n",
    "edns0 and trust-ad": "nameserver 192.0.2.53\noptions edns0 trust-ad\n",
    "attempts": "nameserver 192.0.2.53\noptions attempts:4 timeout:3\n",
    "options on several lines": "options ndots:2\nnameserver 192.0.2.53\noptions rotate\n",
    "comments": "# comment\n; comment\nnameserver 192.0.2.53 # trailing\n"
                "nameserver\nsearch\n",
    "systemd-resolved": "# generated\nnameserver 127.0.0.53\noptions edns0 trust-ad\n"
                        "search .\n",
    "no nameserver": "search example.com\noptions ndots:2\n",
    "bad nameserver": "nameserver not-an-address\n",
    "bad search name": "nameserver 192.0.2.53\nsearch " + "x" * 70 + ".example\n",
}


def _settings(make, path):
    try:
        r = make(path)
    except Exception as exc:
        return (type(exc).__name__, str(exc))
    out = {"nameservers": [str(n) for n in r.nameservers], "search": list(r.search),
           "domain": r.domain, "ndots": r.ndots, "rotate": r.rotate, "edns": r.edns,
           "ednsflags": r.ednsflags, "payload": r.payload, "lifetime": r.lifetime,
           "use_search_by_default": r.use_search_by_default, "port": r.port}
    if re.search(r"timeout:\d", path.read_text()):
        # set by the file (unset, dnspython's is 2 s, ours Limits.max_rto)
        out["timeout"] = r.timeout
    if isinstance(r, sync.Resolver):
        r.close()
    return out


@pytest.mark.parametrize("text", VARIANTS.values(), ids=list(VARIANTS))
def test_a_resolv_conf_reads_as_in_dnspython(tmp_path, text):
    path = tmp_path / "resolv.conf"
    path.write_text(text)
    theirs = _settings(lambda p: dns.resolver.Resolver(filename=str(p)), path)
    mine = _settings(lambda p: sync.Resolver(filename=str(p)), path)
    assert mine == theirs


def test_a_search_list_is_used_as_dnspython_orders_it(tmp_path):
    """The names tried for a relative name, by ndots, in dnspython's order."""
    path = tmp_path / "resolv.conf"
    for ndots in (1, 2):
        path.write_text(f"nameserver 192.0.2.53\nsearch a.example b.example\n"
                        f"options ndots:{ndots}\n")
        theirs = dns.resolver.Resolver(filename=str(path))
        mine = sync.Resolver(filename=str(path))
        for name in ("host", "host.sub"):
            qname = dns.name.from_text(name, None)
            expected = theirs._get_qnames_to_try(qname, True)
            got = [n for n, _ in mine._engine._names_to_try(name, True)]
            assert got == expected, (ndots, name)
        mine.close()

