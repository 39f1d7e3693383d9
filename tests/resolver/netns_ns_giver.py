"""Run inside a network namespace of its own (loopback up, no other interface): a server on
127.0.0.1 (UDP and TCP, a free port) that answers NS queries with the NS set given and SOA
queries with an SOA, then each command given, ``{port}`` in its words replaced by the
server's port. Prints the commands' [exit status, stdout, stderr] as one JSON list; a command
still running after ``RUN_LIMIT`` seconds is stopped (its status None). With ``until``, the
commands after the first (runs of one command tried again) stop at the first that exits
with that status.

    python netns_ns_giver.py '{"targets": [NS names], "commands": [[word, ...], ...],
                               "until": status}'
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import dns.flags
import dns.message
import dns.rrset

from tcp_queries import send, serve_tcp   # this script's folder is first on sys.path

#: Seconds a command may run (each asks with +time=1 and ends in a few seconds; dig 9.18's
#: +nssearch has been seen never to end under load).
RUN_LIMIT = 15


def main() -> None:
    spec = json.loads(sys.argv[1])
    targets = spec["targets"]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", port))           # the namespace is new: the TCP twin is free
    tcp.listen(8)

    def answer(q: dns.message.Message) -> bytes:
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
        name, rdtype = q.question[0].name, q.question[0].rdtype
        if rdtype == 2:
            r.answer.append(dns.rrset.from_text(name, 300, "IN", "NS", *targets))
        elif rdtype == 6:
            r.answer.append(dns.rrset.from_text(name, 300, "IN", "SOA",
                                                "ns.example. host.example. 1 2 3 4 5"))
        return r.to_wire()

    def serve_udp() -> None:
        while True:
            data, peer = udp.recvfrom(65535)
            udp.sendto(answer(dns.message.from_wire(data)), peer)

    def answer_tcp(conn: socket.socket, q: dns.message.Message) -> None:
        send(conn, answer(q))

    threading.Thread(target=serve_udp, daemon=True).start()
    threading.Thread(target=serve_tcp, args=(tcp, answer_tcp), daemon=True).start()
    results = []
    for i, cmd in enumerate(spec["commands"]):
        try:
            p = subprocess.run([w.replace("{port}", str(port)) for w in cmd],
                               capture_output=True, text=True, timeout=RUN_LIMIT)
        except subprocess.TimeoutExpired as exc:    # stopped: no exit status
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            results.append([None, out, f"stopped after {RUN_LIMIT} s"])
            continue
        results.append([p.returncode, p.stdout, p.stderr])
        if i and p.returncode == spec.get("until"):
            break                                   # a run of the retried command that ended
    print(json.dumps(results))


if __name__ == "__main__":
    main()
