"""A DNS server on 127.0.0.1 (a free UDP port) for the daemon's tests of forward and stub
zones: it answers every A question with ``address`` (TTL ``ttl``; flags AA and RA), other
types with an empty NOERROR, or keeps silent while ``silent`` is set, and records each
question's name in ``asked``. A thread serves it until ``close``."""
from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset


class LoopbackAuthority:
    def __init__(self, address: str = "192.0.2.77", ttl: int = 300) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.address, self.ttl = address, ttl
        self.silent = threading.Event()
        self.asked: list[str] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.done.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            try:
                q = dns.message.from_wire(data)
            except Exception:       # noqa: BLE001 - not a query: ignored
                continue
            question = q.question[0]
            self.asked.append(question.name.to_text())
            if self.silent.is_set():
                continue
            r = dns.message.make_response(q)
            r.flags |= dns.flags.AA | dns.flags.RA
            if question.rdtype == dns.rdatatype.A:
                r.answer.append(dns.rrset.from_text(question.name, self.ttl, "IN", "A",
                                                    self.address))
            self.sock.sendto(r.to_wire(), peer)

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.sock.close()
