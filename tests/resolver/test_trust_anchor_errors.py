"""A malformed trust anchor stops the daemon with one line naming ``--trust-anchor`` (or the
config key), the file, the line, the record and why; an anchor with only unsupported
algorithms or digest types is not an error: its zone is insecure, with a warning naming the
record (RFC 4035 section 5, RFC 6840 section 5.2; Unbound does the same)."""
from __future__ import annotations

import logging

import dns.flags
import dns.message
import dns.rcode
import pytest

from daemon_proc import cli
from ports import free_port
from resolver.dnssec.trust_anchor import TrustAnchorError, load, unusable

# the root's KSK-2017 DS, and the same with its SHA-256 digest cut short by one byte
GOOD = ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
SHORT = ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC"


def test_a_short_digest_names_file_line_record_and_why(tmp_path):
    path = tmp_path / "root.ds"
    path.write_text(f"; anchors\n{GOOD}\n{SHORT}\n")
    with pytest.raises(TrustAnchorError) as err:
        load(str(path))
    msg = str(err.value)
    assert f"{path}:3" in msg and "DS record" in msg and "E06D44B8" in msg
    assert "31 bytes" in msg and "SHA-256" in msg and "32" in msg


@pytest.mark.parametrize("line, why", [
    (". IN DS 20326 8 2 XYZ", "not hexadecimal"),
    (". IN DNSKEY 257 3 8 !!!notbase64", "DNSKEY record"),
    (". IN DS 20326", "DS record"),
])
def test_other_malformed_records_are_named_too(tmp_path, line, why):
    path = tmp_path / "anchor"
    path.write_text(line + "\n")
    with pytest.raises(TrustAnchorError) as err:
        load(str(path))
    assert f"{path}:1" in str(err.value) and why in str(err.value)


def test_the_daemon_exits_2_naming_trust_anchor_not_root_hints(tmp_path):
    path = tmp_path / "root.ds"
    path.write_text(SHORT + "\n")
    r = cli("serve", "--listen", f"127.0.0.1:{free_port()}", "--trust-anchor", str(path))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "trust-anchor" in lines[0] and "root-hints" not in lines[0]
    assert f"{path}:1" in lines[0] and "digest" in lines[0]
    conf = tmp_path / "resolver.toml"
    conf.write_text(f'trust-anchor = "{path}"\n')
    r = cli("serve", "--listen", f"127.0.0.1:{free_port()}", "--config", str(conf))
    assert r.returncode == 2 and "trust-anchor" in r.stderr and f"{path}:1" in r.stderr


def test_unsupported_algorithm_and_digest_are_warnings(tmp_path):
    path = tmp_path / "anchor"
    path.write_text(". IN DS 20326 99 2 "
                    "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"
                    ". IN DS 20326 8 9 00112233\n")
    anchors = load(str(path))
    warnings = unusable(anchors)
    assert any("algorithm 99" in w and f"{path}:1" in w for w in warnings)
    assert any("digest type 9" in w and f"{path}:2" in w for w in warnings)
    assert any("treated as insecure" in w for w in warnings)
    assert unusable(load(_write(tmp_path / "good", GOOD))) == []


def _write(path, text):
    path.write_text(text + "\n")
    return str(path)


def test_an_unsupported_anchor_makes_its_zone_insecure_not_bogus(run, validating, tmp_path,
                                                                  caplog):
    path = _write(tmp_path / "anchor", ". IN DS 1234 99 2 " + "AB" * 32)

    async def go():
        with caplog.at_level(logging.WARNING, logger="resolver.api"):
            r = validating(trust_anchor=path)
        assert any("algorithm 99" in m for m in caplog.messages)
        for name in ("www.example.com.", "www.altered.com."):
            resp = await r.resolve_message(dns.message.make_query(name, "A",
                                                                  want_dnssec=True))
            assert resp.rcode() == dns.rcode.NOERROR and resp.answer, name
            assert not resp.flags & dns.flags.AD, name

    run(go(), timeout=15)
