"""RFC 5011 trust-anchor tracking (resolver.dnssec.autotrust), sans-IO: DNSKEY rrsets made
and signed with dnspython at chosen wall-clock times, fed to a TrustPoint; and its state file
(resolver.dnssec.autotrust_file) in Unbound's format, written atomically."""
from __future__ import annotations

import os

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from resolver.dnssec import autotrust_file
from resolver.dnssec.autotrust import REVOKE, State, Timers, TrustPoint, TrackedKey
from resolver.dnssec.trust_anchor import TrustAnchorError

ROOT = dns.name.root
DAY = 86400
T0 = 1_700_000_000
TIMERS = Timers()                       # RFC 5011's 30-day hold-downs
ALG = dns.dnssec.Algorithm.ECDSAP256SHA256


def new_key(flags: int = 257):
    priv = ec.generate_private_key(ec.SECP256R1())
    return priv, dns.dnssec.make_dnskey(priv.public_key(), ALG, flags=flags)


def revoked(pair):
    priv, key = pair
    return priv, key.replace(flags=key.flags | REVOKE)


def keyset(published, signers, now, ttl=172800, lifetime=14 * DAY):
    """(DNSKEY rrset of ``published`` keys, RRSIGs over it by ``signers``) at ``now``."""
    rrset = dns.rrset.from_rdata_list(ROOT, ttl, [k for _, k in published])
    sigs = dns.rrset.RRset(ROOT, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    for priv, key in signers:
        sigs.add(dns.dnssec.sign(rrset, priv, ROOT, key, inception=now - 3600,
                                 lifetime=lifetime), ttl)
    return rrset, sigs


def anchored(pair) -> TrustPoint:
    """A trust point configured with ``pair``'s key (as a plain anchor file would)."""
    return TrustPoint(ROOT, keys=[TrackedKey(pair[1], State.VALID, ttl=172800)])


def probe_every(tp, published, signers, start, days, step_days=1, timers=TIMERS):
    """Probes once a day (well within the 15-day bound) from ``start`` for ``days``."""
    t = start
    for _ in range(int(days / step_days)):
        t += int(step_days * DAY)
        res = tp.probe(*keyset(published, signers, t), t, timers)
        assert res.verified, res.reason
    return t


def tag(pair) -> int:
    return dns.dnssec.key_id(pair[1])


def test_new_ksk_goes_addpend_then_valid_after_the_add_holddown():
    old, new = new_key(), new_key()
    tp = anchored(old)
    res = tp.probe(*keyset([old, new], [old], T0), T0, TIMERS)
    assert res.verified and res.changed
    assert tp.states() == {tag(old): State.VALID, tag(new): State.ADDPEND}
    assert new[1] not in tp.anchor().dnskey
    # 29 days on, still pending: not trusted
    t = probe_every(tp, [old, new], [old], T0, 29)
    assert tp.states()[tag(new)] == State.ADDPEND
    assert tp.anchor().dnskey == [old[1]]
    # past 30 days: Valid and trusted beside the old key
    t = probe_every(tp, [old, new], [old], t, 2)
    assert tp.states()[tag(new)] == State.VALID
    assert set(tp.anchor().dnskey) == {old[1], new[1]}


def test_a_pending_key_that_disappears_is_forgotten():
    old, new = new_key(), new_key()
    tp = anchored(old)
    tp.probe(*keyset([old, new], [old], T0), T0, TIMERS)
    tp.probe(*keyset([old], [old], T0 + DAY), T0 + DAY, TIMERS)
    assert tp.states() == {tag(old): State.VALID}
    # seen again later: its hold-down starts over
    tp.probe(*keyset([old, new], [old], T0 + 2 * DAY), T0 + 2 * DAY, TIMERS)
    probe_every(tp, [old, new], [old], T0 + 2 * DAY, 29)
    assert tp.states()[tag(new)] == State.ADDPEND


def test_a_revoked_self_signed_key_is_untrusted_at_once_and_removed_after_the_del_holddown():
    old, new = new_key(), new_key()
    tp = TrustPoint(ROOT, keys=[TrackedKey(old[1], State.VALID), TrackedKey(new[1], State.VALID)])
    rev = revoked(old)
    res = tp.probe(*keyset([rev, new], [rev, new], T0), T0, TIMERS)
    assert res.verified and res.changed
    assert tp.anchor().dnskey == [new[1]]
    assert tp.states() == {tag(rev): State.REVOKED, tag(new): State.VALID}
    # still published: kept as Revoked; once gone for the delete hold-down: forgotten
    t = probe_every(tp, [rev, new], [rev, new], T0, 40)
    assert tp.states()[tag(rev)] == State.REVOKED
    t = probe_every(tp, [new], [new], t, 29)
    assert tp.states()[tag(rev)] == State.REVOKED
    probe_every(tp, [new], [new], t, 2)
    assert tp.states() == {tag(new): State.VALID}


def test_a_revoked_key_not_signed_by_itself_is_not_revoked():
    old, new = new_key(), new_key()
    tp = TrustPoint(ROOT, keys=[TrackedKey(old[1], State.VALID), TrackedKey(new[1], State.VALID)])
    rev = revoked(old)
    tp.probe(*keyset([rev, new], [new], T0), T0, TIMERS)
    assert tp.states()[tag(old)] == State.MISSING          # absent unrevoked, still trusted
    assert set(tp.anchor().dnskey) == {old[1], new[1]}


def test_the_last_key_revoked_leaves_the_zone_without_anchor():
    only = new_key()
    tp = anchored(only)
    rev = revoked(only)
    res = tp.probe(*keyset([rev], [rev], T0), T0, TIMERS)
    assert res.changed and tp.revoked
    assert tp.anchor().dnskey == [] and tp.anchor().ds == []
    assert ";;REVOKED" in autotrust_file.render(tp)


def test_a_key_vanishing_without_revocation_is_missing_and_kept():
    old, new = new_key(), new_key()
    tp = TrustPoint(ROOT, keys=[TrackedKey(old[1], State.VALID), TrackedKey(new[1], State.VALID)])
    t = probe_every(tp, [new], [new], T0, 100)
    assert tp.states()[tag(old)] == State.MISSING
    assert set(tp.anchor().dnskey) == {old[1], new[1]}     # Missing keys are still trusted
    # back again: Valid
    tp.probe(*keyset([old, new], [new], t + DAY), t + DAY, TIMERS)
    assert tp.states()[tag(old)] == State.VALID


def test_keep_missing_removes_a_long_missing_key_and_zero_keeps_it_forever():
    old, new = new_key(), new_key()
    for keep, expect in ((10 * DAY, {tag(new): State.VALID}),
                         (0, {tag(old): State.MISSING, tag(new): State.VALID})):
        timers = Timers(keep_missing=keep)
        tp = TrustPoint(ROOT, keys=[TrackedKey(old[1], State.VALID),
                                    TrackedKey(new[1], State.VALID)])
        probe_every(tp, [new], [new], T0, 12, timers=timers)
        assert tp.states() == expect


def test_a_forged_key_in_an_unverified_rrset_never_becomes_trusted():
    old, forged = new_key(), new_key()
    tp = anchored(old)
    t = T0
    for _ in range(60):                  # 60 days of answers signed by the forged key only
        t += DAY
        res = tp.probe(*keyset([old, forged], [forged], t), t, TIMERS)
        assert not res.verified
        assert "not signed by a trusted key" in res.reason
    assert tp.states() == {tag(old): State.VALID}
    assert tp.anchor().dnskey == [old[1]]
    # a forged rrset without the trusted key at all
    res = tp.probe(*keyset([forged], [forged], t), t, TIMERS)
    assert not res.verified and tp.anchor().dnskey == [old[1]]
    # a forged revocation of the trusted key (not signed by it) is ignored
    res = tp.probe(*keyset([revoked(old)], [forged], t), t, TIMERS)
    assert not tp.revoked and tp.anchor().dnskey == [old[1]]


def test_an_expired_signature_is_not_used():
    old, new = new_key(), new_key()
    tp = anchored(old)
    rrset, sigs = keyset([old, new], [old], T0, lifetime=2 * DAY)
    res = tp.probe(rrset, sigs, T0 + 3 * DAY, TIMERS)
    assert not res.verified and tp.states() == {tag(old): State.VALID}


def test_a_ds_anchor_trusts_its_key_at_the_first_probe():
    ksk, other = new_key(), new_key()
    tp = TrustPoint(ROOT, ds=[dns.dnssec.make_ds(ROOT, ksk[1], "SHA256")])
    res = tp.probe(*keyset([ksk, other], [ksk], T0), T0, TIMERS)
    assert res.verified
    assert tp.states() == {tag(ksk): State.VALID, tag(other): State.ADDPEND}
    assert tp.ds == [] and tp.anchor().dnskey == [ksk[1]]


def test_query_interval_follows_rfc5011_section_2_3():
    k = new_key()
    tp = anchored(k)
    # TTL 2 days, signatures 14 days: min(15 days, 1 day, 7 days) = 1 day
    tp.probe(*keyset([k], [k], T0), T0, TIMERS)
    assert tp.query_interval == DAY and tp.retry_time == 3600 * 4 + 2880
    assert T0 + 0.9 * DAY <= tp.next_probe_time <= T0 + DAY
    # TTL 60 s: the 1-hour floor, lifted by permit-small-holddown
    tp.probe(*keyset([k], [k], T0, ttl=60), T0, TIMERS)
    assert tp.query_interval == 3600 and tp.retry_time == 3600
    tp.probe(*keyset([k], [k], T0, ttl=60), T0, Timers(permit_small_holddown=True))
    assert tp.query_interval == 30 and tp.retry_time == 6
    # a long TTL and long signatures: the 15-day cap
    tp.probe(*keyset([k], [k], T0, ttl=10 ** 7, lifetime=100 * DAY), T0, TIMERS)
    assert tp.query_interval == 15 * DAY


# ---- the state file ----------------------------------------------------------------------------

def test_state_file_round_trip_in_unbounds_format(tmp_path):
    old, new = new_key(), new_key()
    tp = anchored(old)
    tp.probe(*keyset([old, new], [old], T0), T0, TIMERS)
    path = tmp_path / "root.key"
    autotrust_file.write(path, tp)
    text = path.read_text()
    assert text.startswith("; autotrust trust anchor file\n;;id: . 1\n")
    assert f";;last_success: {T0} ;;" in text
    assert ";;state=1 [ ADDPEND ] ;;count=1" in text and ";;state=2 [  VALID  ]" in text
    back = autotrust_file.read(path)
    assert back.states() == tp.states()
    assert back.keys[1].last_change == T0 and back.keys[1].pending_count == 1
    assert (back.last_success, back.query_interval, back.next_probe_time) == \
        (tp.last_success, tp.query_interval, tp.next_probe_time)
    assert [k.dnskey for k in back.keys] == [k.dnskey for k in tp.keys]


UNBOUND_FILE = """; autotrust trust anchor file
;;id: . 1
;;last_queried: 1732000000 ;;Tue Nov 19 07:06:40 2024
;;last_success: 1732000000 ;;Tue Nov 19 07:06:40 2024
;;next_probe_time: 1732040000 ;;Tue Nov 19 18:13:20 2024
;;query_failed: 0
;;query_interval: 43200
;;retry_time: 8640
.	172800	IN	DNSKEY	{key} ;{{id = {tag} (ksk), size = 256b}} ;;state=2 [  VALID  ] ;;count=0 ;;lastchange=1731000000 ;;Thu Nov  7 17:20:00 2024
"""


def test_reads_a_state_file_unbound_wrote(tmp_path):
    k = new_key()
    path = tmp_path / "root.key"
    path.write_text(UNBOUND_FILE.format(key=k[1].to_text(), tag=tag(k)))
    tp = autotrust_file.read(path)
    assert tp.name == ROOT and tp.states() == {tag(k): State.VALID}
    assert tp.keys[0].last_change == 1731000000 and tp.query_interval == 43200
    assert tp.anchor().dnskey == [k[1]]


def test_reads_a_plain_anchor_file_as_the_initial_state(tmp_path):
    k, d = new_key(), new_key()
    path = tmp_path / "root.key"
    path.write_text(f"; the root\n. 172800 IN DNSKEY {k[1].to_text()}\n"
                    f". IN DS {dns.dnssec.make_ds(ROOT, d[1], 'SHA256').to_text()}\n")
    tp = autotrust_file.read(path)
    assert tp.states() == {tag(k): State.VALID} and tp.keys[0].last_change == 0
    assert len(tp.ds) == 1


def test_bad_state_files_are_clear_errors(tmp_path):
    path = tmp_path / "x.key"
    path.write_text(";;id: . 1\n. 3600 IN DNSKEY 257 3 13 " + "A" * 88 + "\n")
    with pytest.raises(TrustAnchorError, match="no ;;state= annotation"):
        autotrust_file.read(path)
    path.write_text("; nothing\n")
    with pytest.raises(TrustAnchorError, match="no DS or DNSKEY"):
        autotrust_file.read(path)
    path.write_text(". IN A 192.0.2.1\n")
    with pytest.raises(TrustAnchorError, match="not a DS or DNSKEY"):
        autotrust_file.read(path)
    with pytest.raises(TrustAnchorError, match="cannot read"):
        autotrust_file.read(tmp_path / "absent.key")


def test_a_crash_before_the_rename_leaves_the_old_file(tmp_path, monkeypatch):
    old, new = new_key(), new_key()
    tp = anchored(old)
    path = tmp_path / "root.key"
    autotrust_file.write(path, tp)
    before = path.read_bytes()
    tp.probe(*keyset([old, new], [old], T0), T0, TIMERS)

    def crash(src, dst):
        assert os.path.exists(src)               # the new state was written in full first
        assert autotrust_file.read(src).states() == tp.states()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        autotrust_file.write(path, tp)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["root.key"]          # no temporary file left behind
    autotrust_file.write(path, tp)
    assert autotrust_file.read(path).states() == tp.states()


def test_an_unwritable_directory_is_named(tmp_path):
    d = tmp_path / "gone"                       # not there: nothing can be created in it
    tp = anchored(new_key())
    assert "is not writable" in autotrust_file.writable(d / "root.key")
    with pytest.raises(OSError, match="must be writable by the daemon's user"):
        autotrust_file.write(d / "root.key", tp)
    assert autotrust_file.writable(tmp_path / "root.key") is None


def test_signature_checks_per_probe_are_bounded():
    """RRSIGs that name the trusted key but do not verify (KeyTrap's trick) are tried at
    most ``max_checks`` times: past that, the rrset is not used, even with a good RRSIG
    behind them."""
    old, new = new_key(), new_key()
    rrset, good = keyset([old, new], [old], T0)
    real = good[0]
    junk = [real.replace(signature=bytes([i]) * 64) for i in range(10)]
    for n, used in ((7, True), (8, False)):
        sigs = dns.rrset.from_rdata_list(ROOT, 172800, junk[:n] + [real])
        tp = anchored(old)
        res = tp.probe(rrset, sigs, T0, TIMERS, max_checks=8)
        assert res.verified is used, (n, res.reason)
        assert (tp.states().get(tag(new)) == State.ADDPEND) is used


def test_reads_a_key_written_over_several_lines(tmp_path):
    k = new_key()
    b64 = k[1].to_text().split(" ", 3)[3]
    path = tmp_path / "root.key"
    path.write_text(f". 172800 IN DNSKEY 257 3 13 ( ; the KSK\n    {b64[:40]}\n"
                    f"    {b64[40:]} ) ; key id = {tag(k)}\n")
    tp = autotrust_file.read(path)
    assert [x.dnskey for x in tp.keys] == [k[1]] and tp.keys[0].state == State.VALID


def test_a_probe_without_answer_is_retried_at_the_retry_time():
    k = new_key()
    tp = anchored(k)
    tp.probe(*keyset([k], [k], T0), T0, TIMERS)                 # retry time: 4 h 48 min
    res = tp.probe(None, None, T0 + DAY, TIMERS)
    assert not res.verified and res.reason == "no DNSKEY rrset"
    assert T0 + DAY + 0.9 * tp.retry_time <= tp.next_probe_time <= T0 + DAY + tp.retry_time
    assert tp.states() == {tag(k): State.VALID} and tp.last_success == T0
    # a rrset that does not verify, after a success, is counted as a failed query
    other = new_key()
    tp.probe(*keyset([k], [other], T0 + DAY), T0 + DAY, TIMERS)
    assert tp.query_failed == 1
