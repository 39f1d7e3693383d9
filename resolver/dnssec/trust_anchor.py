"""Trust anchors: where the DNSSEC chain of trust starts.

Accepted forms: a file of DS and/or DNSKEY lines in zone-file syntax (as Debian's
``dns-root-data`` ships ``root.key``/``root.ds``), IANA's RFC 7958 XML (``root-anchors.xml``),
a dnspython DS/DNSKEY rrset, or a list of those. The package ships the real root's anchor in
``resolver/data/root.key``.
"""
from __future__ import annotations

import calendar
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

ROOT_ANCHOR_FILE = Path(__file__).parent.parent / "data" / "root.key"


class TrustAnchorError(ValueError):
    """A trust anchor that cannot be read; the message names the file and line."""


@dataclass
class TrustAnchor:
    """The DS and/or DNSKEY records trusted for one zone."""

    name: dns.name.Name
    ds: list = field(default_factory=list)
    dnskey: list = field(default_factory=list)
    #: where the records came from (file:line), for messages
    where: list = field(default_factory=list)

    @property
    def wire(self) -> bytes:
        return self.name.to_wire().lower()


def load(source) -> dict[bytes, TrustAnchor]:
    """Trust anchors keyed by lower-cased wire owner name, from any accepted form."""
    out: dict[bytes, TrustAnchor] = {}
    if isinstance(source, (str, os.PathLike)):
        _from_file(Path(source), out)
    elif isinstance(source, dns.rrset.RRset):
        _add_rrset(source, out, "rrset")
    elif isinstance(source, (list, tuple)):
        for item in source:
            for k, v in load(item).items():
                a = out.setdefault(k, TrustAnchor(v.name))
                a.ds += v.ds
                a.dnskey += v.dnskey
                a.where += v.where
    else:
        raise TrustAnchorError(f"cannot use {type(source).__name__} as a trust anchor "
                               "(a path, a DS/DNSKEY rrset or a list of them)")
    if not out:
        raise TrustAnchorError(f"no DS or DNSKEY record in trust anchor {source}")
    return out


def _anchor(out: dict, name: dns.name.Name) -> TrustAnchor:
    key = name.to_wire().lower()
    if key not in out:
        out[key] = TrustAnchor(name)
    return out[key]


def _add_rrset(rrset: dns.rrset.RRset, out: dict, where: str) -> None:
    if rrset.rdtype not in (dns.rdatatype.DS, dns.rdatatype.DNSKEY):
        raise TrustAnchorError(f"{where}: trust anchors are DS or DNSKEY, not "
                               f"{dns.rdatatype.to_text(rrset.rdtype)}")
    a = _anchor(out, rrset.name)
    for rd in rrset:
        (a.ds if rrset.rdtype == dns.rdatatype.DS else a.dnskey).append(rd)


def _from_file(path: Path, out: dict) -> None:
    try:
        text = path.read_text()
    except OSError as e:
        raise TrustAnchorError(f"cannot read trust anchor {path}: {e.strerror}") from None
    if text.lstrip().startswith("<"):
        _from_xml(path, text, out)
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split(";", 1)[0].strip()
        if not line or line.startswith("$"):
            continue
        tok = line.split()
        try:
            i = next(i for i, t in enumerate(tok) if t.upper() in ("DS", "DNSKEY"))
        except StopIteration:
            raise TrustAnchorError(f"{path}:{lineno}: not a DS or DNSKEY record: {line!r}") \
                from None
        try:
            name = dns.name.from_text(tok[0])
            rdtype = dns.rdatatype.from_text(tok[i])
            why = _ds_digest_problem(tok[i + 1:]) if rdtype == dns.rdatatype.DS else None
            if why is None:
                rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, " ".join(tok[i + 1:]))
        except (dns.exception.DNSException, ValueError) as e:
            why = str(e) or type(e).__name__
        if why is not None:
            raise TrustAnchorError(f"{path}:{lineno}: {tok[i].upper()} record {line!r}: "
                                   f"{why}")
        a = _anchor(out, name)
        (a.ds if rdtype == dns.rdatatype.DS else a.dnskey).append(rd)
        a.where.append(f"{path}:{lineno}")


#: Digest lengths of the DS digest types with a fixed one (RFC 4034, 4509, 5933, 6605).
DIGEST_LENGTHS = {1: ("SHA-1", 20), 2: ("SHA-256", 32), 3: ("GOST R 34.11-94", 32),
                  4: ("SHA-384", 48)}


def _ds_digest_problem(fields: list[str]) -> str | None:
    """Why a DS presentation (key tag, algorithm, digest type, digest) cannot be a trust
    anchor's, when its digest does not fit its digest type; None otherwise (other faults are
    dnspython's to report)."""
    if len(fields) < 4 or not fields[2].isdigit():
        return None
    known = DIGEST_LENGTHS.get(int(fields[2]))
    digest = "".join(fields[3:])
    try:
        size = len(bytes.fromhex(digest))
    except ValueError:
        return f"digest {digest!r} is not hexadecimal"
    if known is not None and size != known[1]:
        return (f"digest is {size} bytes but digest type {fields[2]} ({known[0]}) "
                f"makes {known[1]}-byte digests")
    return None


def unusable(anchors: dict) -> list[str]:
    """Warnings for anchor records this validator cannot use (unsupported key algorithm or
    digest type), naming where each came from; a zone left with none usable is said to be
    insecure, as RFC 4035 section 5 and RFC 6840 section 5.2 want (and Unbound does)."""
    from resolver.dnssec.sig import DIGESTS, SUPPORTED_ALGORITHMS, usable_ds

    out = []
    for a in anchors.values():
        zone = a.name.to_text()
        src = ", ".join(dict.fromkeys(a.where)) or "the anchor given"
        for rd in a.ds:
            if rd.algorithm not in SUPPORTED_ALGORITHMS:
                out.append(f"trust anchor {zone} ({src}): DS {rd.key_tag} uses key algorithm "
                           f"{int(rd.algorithm)}, which is not supported")
            elif rd.digest_type not in DIGESTS:
                out.append(f"trust anchor {zone} ({src}): DS {rd.key_tag} uses digest type "
                           f"{rd.digest_type}, which is not supported")
        for rd in a.dnskey:
            if rd.algorithm not in SUPPORTED_ALGORITHMS:
                out.append(f"trust anchor {zone} ({src}): DNSKEY with key algorithm "
                           f"{int(rd.algorithm)}, which is not supported")
        if not usable_ds(a.ds) and not any(k.algorithm in SUPPORTED_ALGORITHMS
                                           for k in a.dnskey):
            out.append(f"trust anchor {zone} ({src}): no record is usable; {zone} and the "
                       "names below it are treated as insecure (not validated)")
    return out


def _xml_time(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip().replace("Z", "+00:00")
    try:
        base = value[:19]
        return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _from_xml(path: Path, text: str, out: dict, now: float | None = None) -> None:
    """RFC 7958: <TrustAnchor><Zone/><KeyDigest validFrom= validUntil=>...</KeyDigest>.
    Digests outside their validity period are skipped."""
    import xml.etree.ElementTree as ET     # only for an anchor file in XML

    now = time.time() if now is None else now
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise TrustAnchorError(f"{path}: not valid trust anchor XML: {e}") from None
    zone = (root.findtext("Zone") or ".").strip()
    try:
        name = dns.name.from_text(zone)
    except dns.exception.DNSException as e:
        raise TrustAnchorError(f"{path}: bad Zone {zone!r}: {e}") from None
    for kd in root.findall("KeyDigest"):
        start, until = _xml_time(kd.get("validFrom")), _xml_time(kd.get("validUntil"))
        if (start is not None and start > now) or (until is not None and until < now):
            continue
        try:
            fields = [kd.findtext(t).strip() for t in ("KeyTag", "Algorithm", "DigestType",
                                                       "Digest")]
            rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS, " ".join(fields))
        except (AttributeError, dns.exception.DNSException, ValueError) as e:
            raise TrustAnchorError(f"{path}: bad KeyDigest {kd.get('id')!r}: {e}") from None
        a = _anchor(out, name)
        a.ds.append(rd)
        a.where.append(f"{path} (KeyDigest {kd.get('id')!r})")
