"""A tiny authoritative DNS server for the corenet-fetch --resolve-with test: it is the
root of a lab namespace in which www.corenet.example has the address 127.0.0.1.

Run as a process: `python https_dnsserver.py`; prints its UDP port (127.0.0.1, port 0),
serves until killed."""
from __future__ import annotations

import socket

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

WWW = dns.name.from_text("www.corenet.example.")
ROOT_NS = dns.name.from_text("a.root.test.")
SOA = dns.rrset.from_text(".", 60, "IN", "SOA",
                          "a.root.test. admin.root.test. 1 3600 600 86400 60")


def answer(query: dns.message.Message) -> dns.message.Message:
    r = dns.message.make_response(query)
    r.flags |= dns.flags.AA
    q = query.question[0]
    name, rdtype = q.name, q.rdtype
    if name == WWW and rdtype == dns.rdatatype.A:
        r.answer.append(dns.rrset.from_text(WWW, 300, "IN", "A", "127.0.0.1"))
    elif name == dns.name.root and rdtype == dns.rdatatype.NS:
        r.answer.append(dns.rrset.from_text(".", 3600, "IN", "NS", str(ROOT_NS)))
    elif name == ROOT_NS and rdtype == dns.rdatatype.A:
        r.answer.append(dns.rrset.from_text(ROOT_NS, 3600, "IN", "A", "127.0.0.1"))
    elif name == dns.name.root and rdtype == dns.rdatatype.SOA:
        r.answer.append(SOA)
    elif WWW.is_subdomain(name) or name == ROOT_NS or ROOT_NS.is_subdomain(name):
        r.authority.append(SOA)  # an existing name (or empty non-terminal): no data
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
        r.authority.append(SOA)
    return r


def main() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1], flush=True)
    while True:
        data, addr = s.recvfrom(4096)
        try:
            query = dns.message.from_wire(data)
            if len(query.question) != 1:
                continue
            s.sendto(answer(query).to_wire(max_size=1232), addr)
        except Exception:  # a lab server: drop what it cannot parse
            continue


if __name__ == "__main__":
    main()
