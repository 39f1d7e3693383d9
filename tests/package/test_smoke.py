"""The installed package at work: corenet's loop carrying TCP, framed and UDP traffic, the
resolver library resolving through a small authority on loopback, and the installed
`corenet-resolver serve` command answering a client. Every server is on 127.0.0.1, bounded
in time, and stopped by PID or closed at the end."""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

import corenet
import resolver
from corenet.framing import open_framed_connection, start_framed_server
from ports import free_port

ADDRESS = "192.0.2.7"


def test_corenet_loop_runs_tcp_framing_udp_and_timers():
    async def main():
        loop = asyncio.get_running_loop()
        assert type(loop).__module__ == "corenet.loop"

        async def echo(stream):
            while (frame := await stream.read_frame()) is not None:
                stream.write_frame(frame[::-1])
                await stream.drain()

        server = await start_framed_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stream = await open_framed_connection("127.0.0.1", port)
        replies = []
        for payload in (b"corenet", b"x" * 100_000, b""):
            stream.write_frame(payload)
            await stream.drain()
            replies.append(await stream.read_frame())
        stream.close()
        server.close()
        await server.wait_closed()

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(data.upper(), addr)

        got = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.set_result(data)

        udp_server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        udp_client, _ = await loop.create_datagram_endpoint(
            Client, remote_addr=udp_server.get_extra_info("sockname"))
        udp_client.sendto(b"datagram")
        datagram = await asyncio.wait_for(got, 5)
        udp_client.close()
        udp_server.close()

        start = loop.time()
        await asyncio.sleep(0.02)
        return replies, datagram, loop.time() - start

    replies, datagram, slept = corenet.run(asyncio.wait_for(main(), 30))
    assert replies == [b"teneroc", b"x" * 100_000, b""]
    assert datagram == b"DATAGRAM"
    assert 0.015 <= slept < 5


class Authority:
    """A UDP authority for the root zone on 127.0.0.1: ``www.example.`` has an A record,
    its ancestors exist without data, every other name does not exist."""

    ZONE = {"www.example.": ADDRESS}

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.asked = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        soa = dns.rrset.from_text(".", 300, "IN", "SOA", "a.root. admin. 1 3600 600 86400 300")
        if name == "." and question.rdtype == dns.rdatatype.NS:
            reply.answer.append(dns.rrset.from_text(".", 300, "IN", "NS", "a.root."))
        elif name == "a.root." and question.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text("a.root.", 300, "IN", "A", "127.0.0.1"))
        elif name in self.ZONE and question.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(name, 300, "IN", "A", self.ZONE[name]))
        elif name == "." or any(known.endswith("." + name) or known == name
                                for known in list(self.ZONE) + ["a.root."]):
            reply.authority.append(soa)
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            reply.authority.append(soa)
        return reply

    def serve(self) -> None:
        while not self.done.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            self.asked += 1
            self.sock.sendto(self.answer(query).to_wire(), peer)

    def __enter__(self) -> Authority:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(5)
        self.sock.close()


def test_the_resolver_library_resolves_through_an_authority_on_loopback():
    async def main():
        r = resolver.Resolver([("a.root.", "127.0.0.1")], port=authority.port,
                              do_not_query_localhost=False)
        try:
            answer = await r.resolve("www.example.", "A")
            with pytest.raises(dns.resolver.NXDOMAIN):
                await r.resolve("missing.example.", "A")
            asked = authority.asked
            again = await r.resolve("www.example.", "A")      # from the cache
            return answer, again, asked
        finally:
            close = getattr(r, "close", None)
            if close is not None:
                await close()

    with Authority() as authority:
        answer, again, asked = corenet.run(asyncio.wait_for(main(), 30))
        assert [rr.address for rr in answer] == [ADDRESS]
        assert [rr.address for rr in again] == [ADDRESS]
        assert authority.asked == asked > 0


def test_the_installed_daemon_serves_a_client(tmp_path):
    exe = Path(sys.executable).parent / "corenet-resolver"
    hints = tmp_path / "root.hints"
    hints.write_text(".  3600000  NS  a.root.\na.root.  3600000  A  127.0.0.1\n")
    with Authority() as authority:
        port = free_port()
        proc = subprocess.Popen(
            [str(exe), "serve", "--listen", f"127.0.0.1:{port}", "--root-hints", str(hints),
             "--no-do-not-query-localhost",
             "--upstream-port", str(authority.port), "--no-validate",
             "--control", str(tmp_path / "control.sock")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            query = dns.message.make_query("www.example.", "A")
            reply, deadline = None, time.monotonic() + 20
            while reply is None and time.monotonic() < deadline and proc.poll() is None:
                try:
                    reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
                except (dns.exception.Timeout, ConnectionRefusedError):
                    time.sleep(0.1)
            assert proc.poll() is None, proc.stdout.read()
            assert reply is not None, "the daemon did not answer within 20 s"
            assert reply.rcode() == dns.rcode.NOERROR
            assert [rr.address for rr in reply.answer[0]] == [ADDRESS]
            assert reply.flags & dns.flags.RA
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            proc.stdout.close()
    assert proc.returncode == 0


def test_the_fetch_command_is_installed():
    exe = Path(sys.executable).parent / "corenet-fetch"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "URL" in out.stdout.upper()
