"""dig's text: a reply (or the query, for +qr) printed section by section as BIND's dig
prints it, records in BIND's presentation format, the command lines."""
from __future__ import annotations

import functools
import re
import sys
import time
from dataclasses import replace

from resolver.tools.dig_options import Options

#: RFC 8914's names, as dig prints them.
EDE_NAMES = {
    0: "Other", 1: "Unsupported DNSKEY Algorithm", 2: "Unsupported DS Digest Type",
    3: "Stale Answer", 4: "Forged Answer", 5: "DNSSEC Indeterminate", 6: "DNSSEC Bogus",
    7: "Signature Expired", 8: "Signature Not Yet Valid", 9: "DNSKEY Missing",
    10: "RRSIGs Missing", 11: "No Zone Key Bit Set", 12: "NSEC Missing", 13: "Cached Error",
    14: "Not Ready", 15: "Blocked", 16: "Censored", 17: "Filtered", 18: "Prohibited",
    19: "Stale NXDOMAIN Answer", 20: "Not Authoritative", 21: "Not Supported",
    22: "No Reachable Authority", 23: "Network Error", 24: "Invalid Data",
}


def _columns(*fields: str, stops: tuple[int, ...] = (24, 32, 40, 48)) -> str:
    """Fields laid out as BIND prints records: tabs to the columns 24, 32, 40 and 48 (8 wide),
    one space when a field already reaches past its column; columns are counted in UTF-8
    bytes, as BIND counts them."""
    out, col = fields[0], len(fields[0].encode())
    for text, to in zip(fields[1:], stops):
        to = max(to, col + 1)
        tabs = to // 8 - col // 8
        out += "\t" * tabs + " " * (to % 8 if tabs else to - col)
        out += text
        col = to + len(text.encode())
    return out


def _style_columns(o: Options, multi: bool) -> tuple[int, int, int, int]:
    """The columns of the TTL, class, type and data in dig's style: nearer the name with
    +multi, or without the TTL or the class."""
    if multi or not (o.ttlid or o.show_class):
        return 24, 24, 24, 32
    if not (o.ttlid and o.show_class):
        return 24, 24, 32, 40
    return 24, 32, 40, 48


def rr_lines(section, question: bool = False, multi: bool = False,
              o: Options | None = None) -> list[str]:
    """A section's records as dig prints them (``o``: +[no]ttlid, +[no]class, +ttlunits,
    +unknownformat and what ``rdata_text`` reads)."""
    import dns.rdataclass
    import dns.rdatatype
    o = o or Options(multi=multi)
    lines = []
    for rrset in section:
        cls = dns.rdataclass.to_text(rrset.rdclass)
        typ = dns.rdatatype.to_text(rrset.rdtype)
        if o.unknownformat:
            cls, typ = f"CLASS{int(rrset.rdclass)}", f"TYPE{int(rrset.rdtype)}"
        ttl_col, class_col, type_col, data_col = _style_columns(o, multi)
        if question:
            # the ";" is outside BIND's column count; the class is there without +class
            lines.append(";" + _columns(_name_text(rrset.name, o), cls, typ,
                                        stops=(class_col, type_col)))
            continue
        ttl = _ttl_units(rrset.ttl) if o.ttlunits else str(rrset.ttl)
        shown = [(f, col) for f, col, on in ((ttl, ttl_col, o.ttlid),
                                             (cls, class_col, o.show_class)) if on]
        fields = [f for f, _ in shown]
        stops = (*(col for _, col in shown), type_col, data_col)
        for rd in rrset:
            if multi:
                data = _multiline(rd, o)
            else:
                data = rdata_text(rd, o)
                if o.rrcomments and typ in ("DNSKEY", "CDNSKEY"):
                    data += "  " + _key_comment(rd)
            lines.append(_columns(_name_text(rrset.name, o), *fields, typ, data, stops=stops))
    return lines


def tty_default(setting: bool | None) -> bool:
    """+idnin/+idnout: as given, else on when the output is a terminal, as in dig."""
    return sys.stdout.isatty() if setting is None else setting


def _name_text(name, o: Options) -> str:
    """A name as dig prints it: in Unicode with +idnout (IDNA 2008), else as it is."""
    if tty_default(o.idnout):
        import dns.name
        try:
            return name.to_unicode(idna_codec=dns.name.IDNA_2008_Practical)
        except dns.name.IDNAException:
            return str(name)
    return str(name)


def _ttl_units(seconds: int) -> str:
    """dig's +ttlunits: ``1w2d``, ``5m``, ``1m30s``."""
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0"


#: the fields of these types' text (from, to) that BIND prints in upper case (hex, base32)
_UPPER = {"DS": (3, None), "CDS": (3, None), "DLV": (3, None), "TLSA": (3, None),
          "SMIMEA": (3, None), "SSHFP": (2, None), "NSEC3": (3, 5), "NSEC3PARAM": (3, 4),
          "ZONEMD": (3, None)}
#: types whose data +nocrypto leaves whole in BIND (dnspython would omit it)
_NOT_CRYPTO = frozenset({"TLSA", "SMIMEA", "IPSECKEY", "CERT"})


@functools.lru_cache(maxsize=8)
def _bind_style(split: int, crypto: bool, idnout: bool):
    import dns.name
    import dns.rdata
    size = split or 1 << 30
    return dns.rdata.RdataStyle(base64_chunk_size=size, hex_chunk_size=size,
                                truncate_crypto=not crypto,
                                idna_codec=dns.name.IDNA_2008_Practical if idnout else None)


def rdata_text(rd, o: Options | None = None) -> str:
    """A record's data on one line as BIND prints it: base64 and hex in groups of 56
    characters (``+split``), hex and base32 in upper case; ``o``'s +nocrypto, +expandaaaa
    and +unknownformat."""
    import ipaddress

    import dns.rdatatype

    o = o or Options()
    if o.unknownformat or _unknown(rd):
        wire = rd.to_wire()
        hexed = wire.hex().upper()
        size = o.split_width or len(hexed) or 1
        return " ".join([f"\\# {len(wire)}"] + [hexed[i:i + size]
                                                 for i in range(0, len(hexed), size)])
    typ = dns.rdatatype.to_text(rd.rdtype)
    if o.expandaaaa and typ == "AAAA":
        return ipaddress.IPv6Address(rd.address).exploded
    if typ in ("SVCB", "HTTPS"):
        return _svcb_text(rd.to_wire())
    if typ == "LOC":            # as BIND: every size and precision, in whole metres if so
        fields = rd.to_text().split()[:9]
        return " ".join(fields + [_metres(cm) for cm in (
            rd.size, rd.horizontal_precision, rd.vertical_precision)])
    if typ == "OPENPGPKEY" and o.crypto:     # as BIND: in groups, as other base64
        import base64
        return " ".join(_chunks(base64.b64encode(rd.key).decode(), o.split_width))
    if typ in ("NID", "L64"):   # as BIND: the groups of the locator without leading zeros
        pref, locator = rd.to_text().split()
        return f"{pref} " + ":".join(f"{int(g, 16):x}" for g in locator.split(":"))
    text = rd.to_text(style=_bind_style(o.split_width, o.crypto or typ in _NOT_CRYPTO,
                                        tty_default(o.idnout)))
    upper = _UPPER.get(typ)
    if upper is not None and not text.endswith("]"):
        fields = text.split(" ")
        a, b = upper
        fields[a:b] = [f.upper() for f in fields[a:b]]
        text = " ".join(fields)
    return text


def _unknown(rd) -> bool:
    """Whether ``rd`` is the data of a type dnspython does not read (RFC 3597's form);
    SVCB and HTTPS data it refused are written from their octets, as BIND does."""
    import dns.rdata
    return isinstance(rd, dns.rdata.GenericRdata) and rd.rdtype not in (64, 65)


def _metres(cm: float) -> str:
    """A LOC size or precision (centimetres, a digit times a power of ten) as BIND writes
    it: whole metres from one metre up (``10m``), else ``0.50m``."""
    cm = int(round(cm))
    return f"{cm // 100}m" if cm >= 100 else f"0.{cm:02d}m"


#: the SvcParamKeys BIND 9.18 names (RFC 9460); another is ``keyN``
_SVC_KEYS = ("mandatory", "alpn", "no-default-alpn", "port", "ipv4hint", "ech", "ipv6hint")


def _svc_key(key: int) -> str:
    return _SVC_KEYS[key] if key < len(_SVC_KEYS) else f"key{key}"


def _svcb_text(data: bytes) -> str:
    """SVCB or HTTPS data as BIND 9.18 writes it, from its octets (so also what dnspython
    refuses to read, an ECH value that is not an ECHConfigList): the priority, the
    target, then each parameter, quoted only for alpn and the keys BIND does not name."""
    import dns.wire
    p = dns.wire.Parser(data)
    fields = [str(p.get_uint16()), p.get_name().to_text()]
    while p.remaining():
        key, size = p.get_struct("!HH")
        fields.append(_svc_param(key, p.get_bytes(size)))
    return " ".join(fields)


def _svc_param(key: int, value: bytes) -> str:
    """One SvcParam as BIND writes it: ``port=443``, ``alpn="h2,h3"``, ``key667="x"``."""
    import base64
    import socket
    import struct

    from dns.rdtypes import svcbbase
    from dns.wire import Parser

    def every(size: int):
        if not value or len(value) % size:
            raise ValueError("not whole items")
        return [value[i:i + size] for i in range(0, len(value), size)]

    name = _svc_key(key)
    try:
        if key == 0:
            text = ",".join(_svc_key(struct.unpack("!H", k)[0]) for k in every(2))
        elif key == 1:
            text = svcbbase.ALPNParam.from_wire_parser(Parser(value)).to_text()
        elif key == 2 and not value:
            return name
        elif key == 3 and len(value) == 2:
            text = str(struct.unpack("!H", value)[0])
        elif key == 4:
            text = ",".join(socket.inet_ntop(socket.AF_INET, a) for a in every(4))
        elif key == 5:
            text = base64.b64encode(value).decode()
        elif key == 6:
            text = ",".join(socket.inet_ntop(socket.AF_INET6, a) for a in every(16))
        else:
            raise ValueError("a key BIND does not name")
    except Exception:                     # BIND's generic form of a parameter
        return f"key{key}" + (f"={svcbbase.GenericParam(value).to_text()}" if value else "")
    return f"{name}={text}"


#: where BIND's +multi continues a record: column 32
_MORE = "\n\t\t\t\t"


def _duration(seconds: int) -> str:
    """BIND's reading of a time in seconds: ``2 weeks``, ``1 minute 30 seconds``."""
    parts = []
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60),
                       ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def _chunks(text: str, width: int) -> list[str]:
    """``text`` in groups of ``width`` characters (0: one group)."""
    if width <= 0:
        return [text]
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]


def _key_comment(rd) -> str:
    """dig's comment on a key: its role, algorithm and key id."""
    from resolver.dnssec.dnspython import dnssec
    role = "KSK" if rd.flags & 0x0001 else "ZSK"
    alg = dnssec.algorithm_to_text(rd.algorithm)
    return f"; {role}; alg = {alg} ; key id = {dnssec.key_id(rd)}"


def _multiline(rd, o: Options) -> str:
    """A record's data as dig's +multi prints it: SOA with its fields commented, keys,
    signatures, certificates, digests and fingerprints (CERT, IPSECKEY, OPENPGPKEY, DS,
    TLSA, SSHFP, ZONEMD) in parentheses over lines of +split's width (44 characters unless
    set), NSEC3 with its next hash and its
    types on lines of their own; other types on one line, as :func:`rdata_text` writes
    them. With +norrcomments the SOA's and keys' comments are left out; with +nocrypto a
    key is its id, a digest or a signature "[omitted]"; with +unknownformat every type
    (and a type unknown without it) is RFC 3597's form."""
    import base64

    import dns.rdatatype
    t = rd.rdtype
    width = o.split_width
    comments = o.rrcomments is not False
    if o.unknownformat or _unknown(rd):   # RFC 3597's form, continued as the others'
        wire = rd.to_wire()
        return (f"\\# {len(wire)} ( " + _MORE.join(_chunks(wire.hex().upper(), width)) + " )"
                if wire else "\\# 0")
    if t == dns.rdatatype.SOA:
        fields = [(rd.serial, "serial"), (rd.refresh, "refresh"), (rd.retry, "retry"),
                  (rd.expire, "expire"), (rd.minimum, "minimum")]
        if not comments:
            return (f"{rd.mname} {rd.rname} ("
                    + "".join(f"{_MORE}{value}" for value, _ in fields) + ")")
        body = "".join(f"{_MORE}{value:<10} ; {what}"
                       + (f" ({_duration(value)})" if what != "serial" else "")
                       for value, what in fields)
        return f"{rd.mname} {rd.rname} ({body}{_MORE})"
    if t in (dns.rdatatype.DNSKEY, dns.rdatatype.CDNSKEY):
        from resolver.dnssec.dnspython import dnssec
        # +nocrypto: BIND prints the key's id in its place
        lines = (_chunks(base64.b64encode(rd.key).decode(), width) if o.crypto
                 else [f"[key id = {dnssec.key_id(rd)}]"])
        chunks = "".join(f"{_MORE}{c}" for c in lines)
        return (f"{rd.flags} {rd.protocol} {int(rd.algorithm)} (" + chunks
                + (f"{_MORE}) {_key_comment(rd)}" if comments else " )"))
    if t in (dns.rdatatype.DS, dns.rdatatype.CDS):
        return (f"{rd.key_tag} {int(rd.algorithm)} {rd.digest_type}"
                + (_hex_lines(rd.digest, width) if o.crypto else f" ({_MORE}[omitted] )"))
    if t in (dns.rdatatype.TLSA, dns.rdatatype.SMIMEA):
        return f"{rd.usage} {rd.selector} {rd.mtype}" + _hex_lines(rd.cert, width)
    if t == dns.rdatatype.SSHFP:
        return f"{rd.algorithm} {rd.fp_type}" + _hex_lines(rd.fingerprint, width)
    if t in (dns.rdatatype.CERT, dns.rdatatype.IPSECKEY, dns.rdatatype.OPENPGPKEY):
        # as BIND: the fields, then the base64 on lines of its own (OPENPGPKEY's and
        # IPSECKEY's in parentheses from the start)
        key = rd.certificate if t == dns.rdatatype.CERT else rd.key
        lines = (_chunks(base64.b64encode(key).decode(), width)
                 if o.crypto or t != dns.rdatatype.OPENPGPKEY else ["[omitted]"])
        if t == dns.rdatatype.OPENPGPKEY:
            return "( " + _MORE.join(lines) + " )"
        n = 3 if t == dns.rdatatype.CERT else 4
        fields = " ".join(rdata_text(rd, replace(o, split=0)).split()[:n])
        return (f"{fields} (" if t == dns.rdatatype.CERT else f"( {fields}") + "".join(
            _MORE + line for line in lines) + " )"
    if t == dns.rdatatype.ZONEMD:
        return (f"{rd.serial} {rd.scheme} {rd.hash_algorithm}"
                + (_hex_lines(rd.digest, width) if o.crypto else f" ({_MORE}[omitted] )"))
    if t == dns.rdatatype.NSEC3:
        # as BIND: the next hash on a line of its own, then each window's types on one
        next_hash = base64.b32hexencode(rd.next).decode().rstrip("=")
        windows = "".join(_MORE + " ".join(
            dns.rdatatype.to_text(window * 256 + i * 8 + bit)
            for i, byte in enumerate(bitmap) for bit in range(8) if byte & (0x80 >> bit))
            for window, bitmap in rd.windows)
        return (f"{int(rd.algorithm)} {rd.flags} {rd.iterations} "
                f"{rd.salt.hex().upper() or '-'} ({_MORE}{next_hash}{windows} )")
    if t == dns.rdatatype.RRSIG:
        import dns.rdtypes.ANY.RRSIG as R
        sig = (_chunks(base64.b64encode(rd.signature).decode(), width) if o.crypto
               else ["[omitted]"])
        return (f"{dns.rdatatype.to_text(rd.type_covered)} {int(rd.algorithm)} {rd.labels} "
                f"{rd.original_ttl} ({_MORE}{R.posixtime_to_sigtime(rd.expiration)} "
                f"{R.posixtime_to_sigtime(rd.inception)} {rd.key_tag} {rd.signer}"
                + "".join(f"{_MORE}{c}" for c in sig) + " )")
    return rdata_text(rd, o)


def _hex_lines(data: bytes, width: int) -> str:
    """``data`` in hex (upper case) as +multi continues a record: in parentheses, ``width``
    characters a line; nothing when there is none (an SSHFP without fingerprint)."""
    if not data:
        return ""
    return " (" + "".join(f"{_MORE}{c}" for c in _chunks(data.hex().upper(), width)) + " )"


def _opt_lines(msg, sent_cookie: bytes | None = None) -> list[str]:
    import dns.edns
    import dns.flags
    flags = " do" if msg.ednsflags & dns.flags.DO else ""
    flags += " co" if msg.ednsflags & CO_FLAG else ""
    mbz = msg.ednsflags & 0x7FFF & ~CO_FLAG    # the flags no RFC defines
    flags += f"; MBZ: 0x{mbz:04x}," if mbz else ";"
    lines = [";; OPT PSEUDOSECTION:",
             f"; EDNS: version: {msg.edns}, flags:{flags} udp: {msg.payload}"]
    for opt in msg.options:
        if isinstance(opt, dns.edns.EDEOption):
            code = int(opt.code)
            label = EDE_NAMES.get(code, "")
            lines.append(f"; EDE: {code}{f' ({label})' if label else ''}"
                         f"{f': ({opt.text})' if opt.text else ''}")
        elif int(opt.otype) == int(dns.edns.OptionType.NSID):
            data = getattr(opt, "nsid", None) or getattr(opt, "data", b"") or b""
            lines.append(_bytes_line("NSID", data))
        elif isinstance(opt, dns.edns.ECSOption):
            lines.append(f"; CLIENT-SUBNET: {opt.address}/{opt.srclen}/{opt.scopelen}")
        elif int(opt.otype) == int(dns.edns.OptionType.COOKIE):
            wire = opt.to_wire()
            verdict = ""
            if sent_cookie is not None and wire[:8] == sent_cookie[:8]:
                # as dig: the server's cookie with ours is "good", ours alone "echoed"
                verdict = " (good)" if len(wire) > 8 else " (echoed)"
            lines.append(f"; COOKIE: {wire.hex()}{verdict}")
        elif int(opt.otype) in _OPTION_NAMES and not opt.to_wire():
            lines.append(f"; {_OPTION_NAMES[int(opt.otype)]}:")
        elif int(opt.otype) == int(dns.edns.OptionType.PADDING):
            n = len(opt.to_wire())
            lines.append(f"; PAD: ({n} bytes)" if n else "; PAD:")
        else:
            lines.append(_bytes_line(f"OPT={int(opt.otype)}", opt.to_wire()))
    if getattr(msg, "pad", 0) and not any(int(opt.otype) == int(dns.edns.OptionType.PADDING)
                                          for opt in msg.options):
        lines.append("; PAD:")            # a query padded when it is written (+padding)
    return lines


#: EDNS's CO flag (compact denial of existence, dig's +coflag)
CO_FLAG = 0x4000
#: the names dig gives the options a query may carry empty (+expire, +keepalive)
_OPTION_NAMES = {9: "EXPIRE", 11: "TCP KEEPALIVE"}


def _bytes_line(label: str, data: bytes) -> str:
    """An option's bytes as dig shows them: hex pairs, then the printable ones quoted."""
    if not data:
        return f"; {label}:"
    shown = "".join(chr(b) if 32 <= b < 127 else "." for b in data)
    return f"; {label}: {' '.join(f'{b:02x}' for b in data)} (\"{shown}\")"


def cookie_of(q) -> bytes | None:
    """The COOKIE option a query carries (its client cookie first), or None."""
    for opt in q.options:
        if int(opt.otype) == 10:
            return opt.to_wire()
    return None


#: the header flag no RFC defines (dig's +zflag), which dig shows as MBZ
Z_FLAG = 0x0040


def header(msg) -> tuple[str, str, str, list[tuple[str, int]]]:
    """A message's opcode, status, flags (without Z) and section counts as dig names them
    (a reply read only in part: its header's counts, ``wire_counts``)."""
    import dns.flags
    import dns.opcode
    import dns.rcode
    opcode = dns.opcode.to_text(msg.opcode())
    flags = " ".join(dns.flags.to_text(msg.flags & ~Z_FLAG).lower().split())
    n_add = (sum(len(r) for r in msg.additional) + (1 if msg.edns >= 0 else 0)
             + (1 if msg.tsig else 0))
    counts = getattr(msg, "wire_counts", None) or (
        len(msg.question), sum(len(r) for r in msg.answer),
        sum(len(r) for r in msg.authority), n_add)
    return (f"{'RESERVED' * opcode.isdigit()}{opcode}", dns.rcode.to_text(msg.rcode()), flags,
            list(zip(("QUERY", "ANSWER", "AUTHORITY", "ADDITIONAL"), counts)))


def render(msg, o: Options, *, elapsed: float | None, server: str, size: int | None,
           sent_cookie: bytes | None = None, sending: bool = False) -> str:
    """dig's text of one reply, with the sections ``o.show`` keeps; ``sent_cookie``: the
    client cookie the query carried (+cookie), which the reply's is checked against.
    ``sending``: the query itself, as +qr shows it before it is sent."""
    import dns.flags
    import dns.rcode

    if o.short:
        said = (f" from server {server.split('#')[0]} in {elapsed * 1000:.0f} ms."
                if o.identify and elapsed is not None else "")
        return "".join(f"{rdata_text(rd, o)}{said}\n" for rrset in msg.answer for rd in rrset)
    s, c = o.show, o.show["comments"]
    out: list[str] = []
    if c:
        opcode, status, flags, counts = header(msg)
        if msg.flags & Z_FLAG:
            flags += f"; MBZ: 0x{(msg.flags & Z_FLAG) >> 4:x}"
        out += [";; Sending:" if sending else ";; Got answer:",
                f";; ->>HEADER<<- opcode: {opcode}, status: {status}, id: {msg.id}",
                f";; flags:{' ' * bool(flags)}{flags}; "     # as dig: "flags:;" for none
                + ", ".join(f"{k}: {n}" for k, n in counts)]
        if msg.flags & dns.flags.RD and not msg.flags & dns.flags.RA and not sending:
            out.append(";; WARNING: recursion requested but not available")
        if not sending and o.edns and msg.edns < 0 and \
                msg.rcode() in (dns.rcode.FORMERR, dns.rcode.NOTIMP):
            # as dig: a server that may not take EDNS is said so
            out += ["", f";; WARNING: EDNS query returned status {status} - retry with "
                    "'+noedns'"]
        extra = 0 if sending else getattr(msg, "extra_bytes", 0)
        if extra:                         # as dig: the octets after the message ("bytes")
            out.append(f";; WARNING: Message has {extra} extra bytes at end")
        out.append("")
        if msg.edns >= 0:
            out += _opt_lines(msg, sent_cookie)
    if s["question"] and (msg.question or sending):
        if c:
            out.append(";; QUESTION SECTION:")
        out += rr_lines(msg.question, question=True, multi=o.multi, o=o)
        if c:
            out.append("")
    for key, title, section in (("answer", "ANSWER", msg.answer),
                                ("authority", "AUTHORITY", msg.authority),
                                ("additional", "ADDITIONAL", msg.additional)):
        if s[key] and section:
            if c:
                out.append(f";; {title} SECTION:")
            out += rr_lines(section, multi=o.multi, o=o)
            if c:
                out.append("")
    if s["additional"] and msg.tsig:
        if c:
            out.append(";; TSIG PSEUDOSECTION:")
        out += tsig_lines(msg.tsig, o)
        if c:
            out.append("")
    if s["stats"] and sending:
        out += [f";; QUERY SIZE: {size}", ""]
    elif s["stats"]:
        if elapsed is not None:
            out.append(f";; Query time: {elapsed * 1e6:.0f} usec" if o.usec
                       else f";; Query time: {elapsed * 1000:.0f} msec")
        out.append(f";; SERVER: {server}")
        out.append(f";; WHEN: {time.strftime('%a %b %d %H:%M:%S %Z %Y')}")
        if size is not None:
            out.append(f";; MSG SIZE  rcvd: {size}")
        out += [tsig_warning(o).rstrip("\n")] if tsig_warning(o) else []
        out.append("")
    elif o.identify and not sending and size is not None and elapsed is not None:
        # as dig: +identify without the statistics says where the reply came from
        where = re.sub(r" \([A-Z-]+\)$", "", server)
        out += [f";; Received {size} bytes from {where} in {elapsed * 1000:.0f} ms", ""]
    return "".join(line + "\n" for line in out)


def tsig_lines(rrset, o: Options) -> list[str]:
    """A TSIG record as dig prints it (its pseudosection's): the fields in columns, or
    with +multi after single spaces with the MAC on lines of its own."""
    import dns.rdataclass
    from resolver.tools.dig_tsig import tsig_text
    name, cls = _name_text(rrset.name, o), dns.rdataclass.to_text(rrset.rdclass)
    if o.multi:
        return [_columns(name, f"{rrset.ttl} {cls} TSIG {tsig_text(rd, o.split_width, _MORE)}")
                for rd in rrset]
    return [_columns(name, str(rrset.ttl), cls, "TSIG", tsig_text(rd, o.split_width))
            for rd in rrset]


def tsig_warning(o: Options) -> str:
    """dig's warnings after a reply's statistics: a signature that could not be verified
    (this reply's or an earlier one's), a secret given whose key could not be made."""
    from resolver.tools.dig_tsig import Checked
    if o.tsig_key is not None and not Checked.validated:
        return ";; WARNING -- Some TSIG could not be validated\n"
    if o.tsig_key is None and o.tsig_secret:
        return ";; WARNING -- TSIG key was not used.\n"
    return ""


def error_line(o: Options, text: str) -> str:
    """One of dig's errors (``no servers could be reached``): a ``;;`` line, or with +yaml a
    DIG_ERROR document entry."""
    if o.yaml:
        return f"- type: DIG_ERROR\n  message: |\n    {text}\n"
    return f";; {text}\n"


def cmd_lines(argv: list[str], o: Options, n_servers: int | None) -> str:
    from corenet import __version__
    batch_line = o.greeting_words is not None           # a batch line's: its words
    words = "".join(f" {w}" for w in (o.greeting_words if batch_line else argv))
    if batch_line and not o.greeting_first:   # as dig: the version line alone after the first
        return f"; <<>> corenet-resolver {__version__} <<>>{words}\n"
    lines = ["", f"; <<>> corenet-resolver {__version__} <<>>{words}"]
    if n_servers is not None and o.server is not None and o.counted:
        lines.append(f"; ({n_servers} server{'s' if n_servers != 1 else ''} found)")
    # as dig: the global options as they were when the first name was read
    lines.append(f";; global options:{' +short' * o.greeted_short} +cmd")
    return "".join(line + "\n" for line in lines)


#: RFC 6052's prefix lengths, in the order RFC 7050 section 3 tries them
_DNS64_LENGTHS = (32, 40, 48, 56, 64, 96)
_WELL_KNOWN = (bytes((192, 0, 0, 170)), bytes((192, 0, 0, 171)))    # ipv4only.arpa's A


def _embedded(address: bytes, length: int) -> bytes | None:
    """The IPv4 address RFC 6052 embeds in ``address`` under a prefix of ``length`` bits
    (the four bytes after the prefix, byte 8, the "u" octet, skipped), or None when the
    "u" octet is not zero."""
    if address[8]:
        return None
    places = [i for i in range(length // 8, 16) if i != 8][:4]
    return bytes(address[i] for i in places)


def dns64_prefixes(msg) -> list[str]:
    """The DNS64 prefixes an ipv4only.arpa AAAA reply reveals (RFC 7050 section 3), as
    +dns64prefix prints them (``PREFIX/LENGTH``): for each address, in the reply's order,
    the shortest prefix length at which it embeds 192.0.0.170 and another address of the
    set, under the same prefix, embeds 192.0.0.171."""
    import socket

    import dns.name
    import dns.rdataclass
    import dns.rdatatype

    rrset = msg.get_rrset(msg.answer, dns.name.from_text("ipv4only.arpa."),
                          dns.rdataclass.IN, dns.rdatatype.AAAA)
    if rrset is None:
        return []
    addresses = [socket.inet_pton(socket.AF_INET6, rd.address) for rd in rrset]
    found = []
    for first in addresses:
        for length in _DNS64_LENGTHS:
            if _embedded(first, length) != _WELL_KNOWN[0]:
                continue
            size = length // 8
            if any(other[:size] == first[:size] and _embedded(other, length) == _WELL_KNOWN[1]
                   for other in addresses):
                prefix = socket.inet_ntop(socket.AF_INET6, first[:size] + bytes(16 - size))
                found.append(f"{prefix}/{length}")
                break
    return found
