"""``tls-ciphers`` and ``tls-ciphersuites``: the TLS listeners choose the cipher suite in
their own order of preference (TLS 1.3: AES-128-GCM first unless the client puts ChaCha20
first), as a client the project did not write (``openssl s_client``) sees it, with the
configured lists applied at start and on reload and bad lists refused with a clear error."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from dot_server import dot_settings, lab_server
from resolver.daemon.config import ConfigError, build
from resolver.daemon.tls_server import TLS13_CIPHERSUITES, ServerContext

OPENSSL = shutil.which("openssl")


def _suite(port: int, *client: str) -> str | None:
    """The suite ``openssl s_client`` with the options ``client`` negotiates, or None when
    the handshake fails."""
    if OPENSSL is None:
        pytest.fail("openssl (Debian package 'openssl') is not installed")
    r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-brief",
                        *client], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20)
    m = re.search(r"^Ciphersuite: (\S+)", r.stdout + r.stderr, re.M)
    return m.group(1) if m else None


# What an OpenSSL client offers by default for TLS 1.3: AES-256-GCM first.
CLIENT_DEFAULT = ("-tls1_3",)
CHACHA_FIRST = ("-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256")


def _serving(run, lab, loop, cfg, tls_port, check) -> None:
    """Runs ``await check(server, ask)`` with the daemon's listeners serving ``cfg``;
    ``ask(*options)`` is ``_suite`` on the DoT port, off the loop."""

    async def go():
        s = lab_server(cfg, lab)
        await s.start()
        try:
            await check(s, lambda *c: loop.run_in_executor(None, _suite, tls_port, *c))
        finally:
            await s.stop(1.0)

    run(go(), timeout=90)


def test_the_servers_order_is_used_and_chacha20_first_is_honoured(run, lab, loop, tmp_path):
    settings, _, _, tls_port = dot_settings(tmp_path, lab)

    async def check(s, ask):
        assert await ask(*CLIENT_DEFAULT) == "TLS_AES_128_GCM_SHA256"
        assert await ask(*CHACHA_FIRST) == "TLS_CHACHA20_POLY1305_SHA256"
        assert await ask("-tls1_3", "-ciphersuites",
                         "TLS_AES_256_GCM_SHA384") == "TLS_AES_256_GCM_SHA384"
        # TLS 1.2: forward secrecy and AEAD only; a client without either is refused.
        assert re.fullmatch(r"ECDHE-\w+-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)",
                            await ask("-tls1_2") or "")
        assert await ask("-tls1_2", "-cipher", "AES128-SHA") is None
        assert await ask("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:"
                         "ECDHE-RSA-AES128-SHA") is None

    _serving(run, lab, loop, build(None, settings), tls_port, check)


def test_configured_lists_apply_at_start_and_on_reload(run, lab, loop, tmp_path):
    settings, _, _, tls_port = dot_settings(tmp_path, lab)
    configured = {**settings, "tls_ciphersuites": "TLS_AES_256_GCM_SHA384",
                  "tls_ciphers": "ECDHE+CHACHA20"}

    async def check(s, ask):
        assert await ask(*CLIENT_DEFAULT) == "TLS_AES_256_GCM_SHA384"
        assert await ask("-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256") is None
        assert (await ask("-tls1_2") or "").endswith("-CHACHA20-POLY1305")
        # Back to the defaults on reload: the next connection has them.
        s.encrypted[0].reload(build(None, settings))
        assert await ask(*CLIENT_DEFAULT) == "TLS_AES_128_GCM_SHA256"
        assert await ask("-tls1_3", "-ciphersuites",
                         "TLS_AES_128_GCM_SHA256") == "TLS_AES_128_GCM_SHA256"

    _serving(run, lab, loop, build(None, configured), tls_port, check)


@pytest.mark.parametrize("setting,bad,says", [
    ("tls_ciphersuites", "TLS_AES_128_GCM_SHA256:TLS_RSA_WITH_RC4", "not a TLS 1.3 cipher"),
    ("tls_ciphersuites", "AES128-GCM", "not a TLS 1.3 cipher"),
    ("tls_ciphers", "NO-SUCH-CIPHER", "no TLS 1.2 cipher matches"),
    ("tls_ciphers", "ECDHE+AESGCM ECDHE+CHACHA20", "cipher names joined by ':'"),
    ("tls_ciphersuites", 128, "cipher names joined by ':'"),
])
def test_a_bad_list_is_refused_with_its_setting_named(lab, tmp_path, setting, bad, says):
    settings, _, _, _ = dot_settings(tmp_path, lab)
    with pytest.raises(ConfigError, match=f"{setting.replace('_', '-')}.*{says}"):
        build(None, {**settings, setting: bad})


def test_a_refused_list_leaves_the_context_as_it_was(tmp_path):
    from tls_certs import CA
    pem, key = CA(tmp_path).issue("server")
    ctx = ServerContext(str(pem), str(key), ("dot",), 2, None, "TLS_AES_256_GCM_SHA384")
    with pytest.raises(ValueError, match="no TLS 1.2 cipher matches"):
        ctx.set_ciphers("NO-SUCH-CIPHER", TLS13_CIPHERSUITES)
    with pytest.raises(ValueError, match="not a TLS 1.3 cipher suite: ''"):
        ctx.set_ciphers(None, "")
    assert ctx.ciphersuites == "TLS_AES_256_GCM_SHA384"


def test_the_lists_from_the_file(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('tls-ciphersuites = "TLS_CHACHA20_POLY1305_SHA256"\n'
                    'tls-ciphers = "ECDHE+AESGCM"\n')
    cfg = build(str(conf))
    assert cfg.tls_ciphersuites == "TLS_CHACHA20_POLY1305_SHA256"
    assert cfg.tls_ciphers == "ECDHE+AESGCM"
    assert build(None).tls_ciphersuites is None and build(None).tls_ciphers is None
