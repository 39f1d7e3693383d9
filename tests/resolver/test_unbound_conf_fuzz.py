"""unbound.conf read from anything (hypothesis): every text is options or a ConfigError
naming why, never another exception; what is read converts to corenet's settings (or a
ConfigError), and the TOML written reads back and builds a config and its zones (or a
ConfigError)."""
from __future__ import annotations

import tomllib

from hypothesis import HealthCheck, given, settings, strategies as st

from resolver.daemon import unbound_conf
from resolver.daemon.config import build, make_zones
from resolver.daemon.values import ConfigError

#: words an unbound.conf is made of, so that the texts drawn reach the converter too
WORDS = ["server:", "forward-zone:", "stub-zone:", "remote-control:", "rpz:", "auth-zone:",
         "view:", "name:", "forward-addr:", "stub-addr:", "interface:", "port:",
         "access-control:", "local-zone:", "local-data:", "local-data-ptr:", "verbosity:",
         "msg-cache-size:", "num-threads:", "do-ip6:", "prefetch:", "ratelimit:",
         "forward-tls-upstream:", "tls-cert-bundle:", "private-address:", "module-config:",
         "edns-buffer-size:", "include:", "access-control-view:", "view-first:", "inside",
         "yes", "no", "0", "1232", "4m", "1g", "-1",
         "127.0.0.1", "127.0.0.1@5353", "1.1.1.1@853#dns.example", "::1", "10.0.0.0/8",
         "allow", "refuse", "static", "redirect", '"a.test. A 192.0.2.1"', "example.",
         '"validator iterator"', "#", "# a comment", "'", '"', "\\", "\n", " ", "\t"]


def text_of(parts: list[str]) -> str:
    return "".join(p if p in ("\n", " ", "\t") else p + " " for p in parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(st.sampled_from(WORDS), max_size=60).map(text_of),
                 st.text(max_size=400)))
def test_any_text_reads_or_says_why(tmp_path_factory, text):
    conf = tmp_path_factory.mktemp("conf") / "unbound.conf"
    conf.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        options = unbound_conf.read(str(conf))
    except ConfigError as e:
        assert str(e)
        return
    try:
        conv = unbound_conf.convert(options)
    except ConfigError as e:
        assert str(e)
        return
    assert conv.report()
    toml = conf.with_suffix(".toml")
    toml.write_text(conv.toml(str(conf)))
    tomllib.loads(toml.read_text())              # what import-unbound writes reads back
    try:
        make_zones(build(str(toml)))             # and is served, or refused for a reason
    except ConfigError as e:
        assert str(e)
