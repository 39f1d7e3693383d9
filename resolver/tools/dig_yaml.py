"""dig's +yaml: each message (the query too, with +qr) as a YAML document entry, as dig 9.18
writes it."""
from __future__ import annotations

import time

from resolver.tools.dig_options import Options
from resolver.tools.dig_output import _opt_lines, header, rdata_text


def _stamp(t: float) -> str:
    """An instant (time.time()) as dig's ``!!timestamp``: UTC, milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _edns(msg, sent_cookie: bytes | None) -> list[str]:
    """The OPT pseudo-section's lines (without their indent): the text form's, as YAML keys."""
    lines = _opt_lines(msg, sent_cookie)
    flags = lines[1].split("flags:", 1)[1].split(";", 1)[0].strip()
    return (["EDNS:", f"  version: {msg.edns}", f"  flags:{' ' + flags if flags else ''}",
             f"  udp: {msg.payload}"] + ["  " + line[2:] for line in lines[2:]])


def yaml_message(msg, o: Options, *, sending: bool, address: str, port: int, proto: str,
                 size: int, sent_at: float, received_at: float | None = None,
                 sent_cookie: bytes | None = None) -> str:
    """One message as dig's +yaml prints it: where it went or came from, its header, and the
    sections ``o.show`` keeps (the OPT pseudo-section with +comments); with +short, the
    header alone (the short lines follow it)."""
    import dns.flags
    if sending:
        kind = "RECURSIVE_QUERY" if msg.flags & dns.flags.RD else "AUTH_QUERY"
    else:
        # as dig: a recursive response has RD and RA both
        kind = ("RECURSIVE_RESPONSE" if msg.flags & dns.flags.RD and msg.flags & dns.flags.RA
                else "AUTH_RESPONSE")
    where = "query" if sending else "response"
    out = ["- type: MESSAGE", "  message:", f"    type: {kind}",
           f"    query_time: !!timestamp {_stamp(sent_at)}"]
    if received_at is not None:
        out.append(f"    response_time: !!timestamp {_stamp(received_at)}")
    out += [f"    message_size: {size}b",
            f"    socket_family: {'INET6' if ':' in address else 'INET'}",
            f"    socket_protocol: {'UDP' if proto == 'UDP' else 'TCP'}",
            f'    response_address: "{address}"', f"    response_port: {port}",
            f'    query_address: "{"::" if ":" in address else "0.0.0.0"}"', "    query_port: 0",
            f"    {where}_message_data:"]
    opcode, status, flags, counts = header(msg)
    body = [f"opcode: {opcode}", f"status: {status}", f"id: {msg.id}", f"flags: {flags}"]
    body += [f"{'QUESTION' if k == 'QUERY' else k}: {n}" for k, n in counts]
    if not o.short:
        body += _sections(msg, o, sent_cookie)
    return "".join(line + "\n" for line in out) + "".join(
        ("      " + line if line else "") + "\n" for line in body)


def _sections(msg, o, sent_cookie) -> list[str]:
    """The message data's lines after the header: the OPT pseudo-section and the sections
    ``o.show`` keeps."""
    import dns.rdataclass
    import dns.rdatatype
    body: list[str] = []
    if o.show["comments"] and msg.edns >= 0:
        body += ["OPT_PSEUDOSECTION:"] + ["  " + line for line in _edns(msg, sent_cookie)]
    if o.show["question"] and msg.question:
        body += ["QUESTION_SECTION:"] + [
            "  - " + _quoted(f"{q.name} {dns.rdataclass.to_text(q.rdclass)} "
                             f"{dns.rdatatype.to_text(q.rdtype)}") for q in msg.question]
    for key, title, section in (("answer", "ANSWER", msg.answer),
                                ("authority", "AUTHORITY", msg.authority),
                                ("additional", "ADDITIONAL", msg.additional)):
        if o.show[key] and section:
            body.append(f"{title}_SECTION:")
            body += ["  - " + _quoted(f"{rrset.name} {rrset.ttl} "
                                      f"{dns.rdataclass.to_text(rrset.rdclass)} "
                                      f"{dns.rdatatype.to_text(rrset.rdtype)} "
                                      f"{rdata_text(rd, o)}") for rrset in section for rd in rrset]
    if o.show["additional"] and msg.tsig:
        # as dig: its entry at the section's indent, then a blank line
        from resolver.tools.dig_tsig import tsig_text
        body += ["TSIG_PSEUDOSECTION:"] + [
            "- " + _quoted(f"{msg.tsig.name} {msg.tsig.ttl} ANY TSIG "
                           f"{tsig_text(rd, o.split_width)}") for rd in msg.tsig] + [""]
    return body
