"""Where a server's TLS 1.3 handshake goes, per event loop: CPU, Python calls, instructions.

A TLS echo server (``create_server(..., ssl=context)``) runs in a process of its own on one
loop kind (asyncio, uvloop, corenet), or corenet's DNS-over-TLS listener layer (``dot``: the
daemon's ``TLSListener``, its TLS in C, with the echo protocol above it instead of the DNS
one). A client process opens ``-n`` connections one after another, each a full TLS
1.3 handshake (no resumption), one 64-byte echo, close_notify and close, as ``openssl s_time
-new`` does. The server's figures cover exactly those connections (a warm-up runs first):

- the server's CPU time per handshake (schedstat; needs a quiet machine) and its minor page
  faults per handshake (fresh memory touched; does not depend on the load);
- ``--profile``: the server's Python calls per handshake and the functions that take most,
  from cProfile (load-independent, but cProfile's own cost inflates the CPU figures);
- ``--callgrind``: the server's user-space instructions per handshake under valgrind, split
  by the object they run in (OpenSSL's libcrypto and libssl, the interpreter, libc, the
  loop's extension modules): load-independent; the kernel's share is not counted.

    .venv/bin/python benchmarks/tls_handshake.py [--loops corenet,dot,uvloop,asyncio]
        [-n 300] [--profile] [--callgrind]

The same server and client drive ``test_tls_echo.py`` (TLS echo requests and new handshakes
per CPU-second in the loop benchmarks).
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import test_echo as te  # noqa: E402  (the echo benchmark's process helpers)

ENV = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "PYTHONHASHSEED": "0"}
KINDS = ["corenet", "dot", "uvloop", "asyncio"]
MESSAGE = 64
WARMUP = 20


# -- certificates

def make_certificate(directory: str) -> tuple[str, str]:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1: (chain file, key file)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                False)
            .sign(key, hashes.SHA256()))
    pem, keyfile = os.path.join(directory, "server.pem"), os.path.join(directory, "server.key")
    with open(pem, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(keyfile, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return pem, keyfile


# -- the server process

def serve(kind: str, pem: str, key: str, profile: bool) -> None:
    """Runs a TLS echo server; prints its port. Commands on stdin, one a line: ``z`` starts
    profiling (``--profile``), ``d PATH`` writes the profile to PATH; end of input stops it."""
    import asyncio

    if kind == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    elif kind == "asyncio":
        loop = asyncio.SelectorEventLoop()
    else:
        import corenet
        loop = corenet.new_event_loop()
    asyncio.set_event_loop(loop)
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    async def main():
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(128)
        lsock.setblocking(False)
        if kind == "dot":
            srv = await dot_listener(loop, Echo, pem, key).listen(loop, lsock)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(pem, key)
            srv = await loop.create_server(Echo, sock=lsock, ssl=ctx, backlog=128)
        print(lsock.getsockname()[1], flush=True)
        stop = loop.create_future()

        def command():
            line = sys.stdin.readline()
            if not line:
                stop.done() or stop.set_result(None)
            elif line.strip() == "z" and profiler is not None:
                profiler.enable()
            elif line.startswith("d ") and profiler is not None:
                profiler.disable()
                profiler.dump_stats(line[2:].strip())
            print("ok", flush=True)

        loop.add_reader(0, command)
        await stop
        srv.close()

    loop.run_until_complete(main())
    os._exit(0)


def dot_listener(loop, app, pem: str, key: str):
    """The daemon's TLS listener with ``app`` for the protocol above TLS, on the settings it
    reads from a daemon (its caps high enough not to count here)."""
    from types import SimpleNamespace

    from resolver.daemon.tls_listener import DOT_ALPN, TLSListener

    cfg = SimpleNamespace(tls_service_pem=pem, tls_service_key=key, tls_session_tickets=2,
                          tcp_max_connections=10_000, tcp_max_connections_per_client=10_000,
                          tcp_idle_timeout=10.0)
    limits = SimpleNamespace(tls_handshake_timeout=10.0)
    server = SimpleNamespace(cfg=cfg, loop=loop, resolver=SimpleNamespace(limits=limits),
                             connections=set(), tcp_by_client={},
                             network_full=lambda client: False)
    return TLSListener(server, "tls", DOT_ALPN, lambda _: app())


class Server:
    def __init__(self, kind: str, pem: str, key: str, *, pin: list[str] = (),
                 profile: bool = False, callgrind_out: str | None = None) -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--serve", kind, pem, key]
        if profile:
            cmd.append("--profile")
        if callgrind_out:
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={callgrind_out}"] + cmd
        self.kind = kind
        self.proc = subprocess.Popen(list(pin) + cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=ENV)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the {kind} TLS server did not start ({self.proc.returncode})")
        self.port = int(line)
        self.pid = self.proc.pid

    def command(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError(f"the {self.kind} server did not answer {line!r}")

    stop = te.Server.stop          # end of input, then a kill if it lingers


# -- the client

def client_context() -> ssl.SSLContext:
    """TLS 1.3, no certificate check (the client's CPU is not what is measured) and no
    resumption: each connection is a full handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


class Connection:
    """A blocking TLS connection over a MemoryBIO, so that close_notify can be sent without
    waiting for the peer's (``SSLSocket.unwrap`` waits)."""

    def __init__(self, ctx: ssl.SSLContext, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing)
        self._until_done(self.obj.do_handshake)

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.incoming.write(data)

    def _until_done(self, step):
        while True:
            try:
                result = step()
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
            else:
                self._flush()
                return result

    def echo(self, message: bytes) -> None:
        self.obj.write(message)
        self._flush()
        got = b""
        while len(got) < len(message):
            got += self._until_done(lambda: self.obj.read(65536))
        if got != message:
            raise AssertionError("the echo differs from the message")

    def close(self) -> None:
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass             # our close_notify is out; the server's is not awaited
        self._flush()
        self.sock.close()


def handshakes(port: int, n: int, ctx: ssl.SSLContext | None = None) -> None:
    """``n`` connections in turn: full handshake, one echo, close_notify, close."""
    ctx = ctx or client_context()
    message = b"x" * MESSAGE
    for _ in range(n):
        c = Connection(ctx, port)
        c.echo(message)
        c.close()


def echoes(port: int, conns: int, size: int, seconds: float) -> int:
    """Round trips of ``size`` bytes on ``conns`` connections at once for ``seconds``: each
    turn sends on all of them, then reads every echo. Returns the requests made."""
    ctx = client_context()
    message = os.urandom(size)
    cs = [Connection(ctx, port) for _ in range(conns)]
    print("START", flush=True)     # the connections are up: the measured window begins
    done = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            for c in cs:
                c.obj.write(message)
                c._flush()
            for c in cs:
                got = b""
                while len(got) < size:
                    got += c._until_done(lambda c=c: c.obj.read(65536))
                if got != message:
                    raise AssertionError("the echo differs from the message")
            done += conns
    finally:
        for c in cs:
            c.close()
    return done


def run_client(port: int, *args: str, pin: list[str] = ()) -> str:
    """Runs this file's client in a process of its own (the server's CPU is measured apart
    from it); its last line of output."""
    r = subprocess.run(list(pin) + [sys.executable, os.path.abspath(__file__), "--client",
                                    str(port), *args],
                       capture_output=True, text=True, env=ENV, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"TLS client failed: {r.stderr.strip()[-2000:]}")
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""


cpu_seconds = te.cpu_seconds


def minor_faults(pid: int) -> int:
    """Page faults the process has taken without I/O (fresh memory it touched)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def cpu_per_handshake(kind: str, pem: str, key: str, n: int) -> tuple[float, float]:
    """(CPU seconds, minor page faults) of the server per handshake."""
    server = Server(kind, pem, key)
    try:
        run_client(server.port, "handshakes", str(WARMUP))
        c0, f0 = cpu_seconds(server.pid), minor_faults(server.pid)
        run_client(server.port, "handshakes", str(n))
        return ((cpu_seconds(server.pid) - c0) / n, (minor_faults(server.pid) - f0) / n)
    finally:
        server.stop()


def profile_per_handshake(kind: str, pem: str, key: str, n: int, workdir: str, top: int = 25):
    """(Python calls per handshake, [(calls per handshake, µs per handshake, function)]),
    the functions called most first (cProfile's times are wall-clock, the calls are not)."""
    import pstats

    out = os.path.join(workdir, f"{kind}.prof")
    server = Server(kind, pem, key, profile=True)
    try:
        run_client(server.port, "handshakes", str(WARMUP))
        server.command("z")
        run_client(server.port, "handshakes", str(n))
        server.command(f"d {out}")
    finally:
        server.stop()
    stats = pstats.Stats(out)
    rows = []
    for (path, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():
        rows.append((nc / n, tt / n * 1e6, f"{os.path.basename(path)}:{line}({func})"))
    rows.sort(key=lambda r: (-r[0], -r[1]))
    return stats.total_calls / n, rows[:top]


def callgrind_costs(path: str) -> dict[tuple[str, str], int]:
    """Self cost (instructions) per (object file, function) from a callgrind output file."""
    names: dict[tuple[str, str], str] = {}    # (namespace, id) -> name (name compression)
    costs: dict[tuple[str, str], int] = {}
    obj = fn = "?"
    skip_next = False
    spaces = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn"}

    def name_of(space: str, spec: str) -> str:
        spec = spec.strip()
        if spec.startswith("("):
            ident, _, rest = spec.partition(")")
            if rest.strip():
                names[space, ident] = rest.strip()
            return names.get((space, ident), ident)
        return spec

    with open(path) as f:
        for line in f:
            key, eq, value = line.partition("=")
            if eq and key in spaces:
                name = name_of(spaces[key], value)
                if key == "ob":
                    obj = os.path.basename(name)
                elif key == "fn":
                    fn = name
            elif key == "calls" and eq:
                skip_next = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) > 1:
                    costs[obj, fn] = costs.get((obj, fn), 0) + int(parts[1])
    return costs


def instructions_per_handshake(kind: str, pem: str, key: str, n: int, workdir: str):
    """({(object, function): instructions per handshake}, total per handshake) under
    callgrind."""
    out = os.path.join(workdir, f"cg.{kind}")
    server = Server(kind, pem, key, callgrind_out=out)
    try:
        run_client(server.port, "handshakes", str(WARMUP))
        subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                       capture_output=True, timeout=120)
        run_client(server.port, "handshakes", str(n))
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                       capture_output=True, timeout=120)
    finally:
        server.stop()
    per_function = {k: v / n for k, v in callgrind_costs(out + ".1").items()}
    return per_function, sum(per_function.values())


def group(obj: str) -> str:
    if obj.startswith("libcrypto"):
        return "libcrypto"
    if obj.startswith("libssl"):
        return "libssl"
    if obj.startswith("_ssl"):
        return "_ssl module"
    if obj.startswith(("python", "libpython")):
        return "interpreter"
    if obj.startswith(("libc.", "libc-", "ld-linux", "libm")):
        return "libc"
    if obj.startswith(("_loop", "_stream", "_transport", "_epoll", "_datagram")):
        return "corenet loop"
    if obj.startswith(("loop.cpython", "uvloop")) or "uvloop" in obj:
        return "uvloop"
    return "other (" + obj.split(".")[0] + ")"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loops", default=",".join(KINDS))
    ap.add_argument("-n", type=int, default=300, help="measured handshakes per loop")
    ap.add_argument("--profile", action="store_true", help="Python calls (cProfile)")
    ap.add_argument("--callgrind", action="store_true", help="instructions (valgrind)")
    ap.add_argument("--top", type=int, default=15, help="functions listed per loop")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU-time figure")
    args = ap.parse_args()
    kinds = [k for k in args.loops.split(",") if k]
    with tempfile.TemporaryDirectory() as workdir:
        pem, key = make_certificate(workdir)
        for kind in kinds:
            if not args.no_cpu:
                cpu, faults = cpu_per_handshake(kind, pem, key, args.n)
                print(f"{kind}: {cpu * 1e6:.0f} us CPU per handshake, {1 / cpu:,.0f} per "
                      f"CPU-second, {faults:.1f} page faults per handshake", flush=True)
            if args.profile:
                calls, rows = profile_per_handshake(kind, pem, key, args.n, workdir, args.top)
                print(f"{kind}: {calls:.0f} Python calls per handshake; per handshake "
                      "(calls, us own wall time under cProfile, function):")
                for nc, us, name in rows:
                    print(f"    {nc:7.1f} {us:8.1f}  {name}")
            if args.callgrind:
                if shutil.which("callgrind_control") is None:
                    sys.exit("valgrind (callgrind_control) is not installed")
                per_function, total = instructions_per_handshake(kind, pem, key, args.n,
                                                                 workdir)
                groups: dict[str, float] = {}
                for (obj, _), v in per_function.items():
                    groups[group(obj)] = groups.get(group(obj), 0) + v
                print(f"{kind}: {total:,.0f} instructions per handshake (user space): "
                      + ", ".join(f"{g} {v:,.0f}" for g, v in
                                  sorted(groups.items(), key=lambda kv: -kv[1]) if v >= 500),
                      flush=True)
                outside = sorted(((v, obj, fn) for (obj, fn), v in per_function.items()
                                  if group(obj) not in ("libcrypto", "libssl")), reverse=True)
                print("    outside OpenSSL, the functions that take most:")
                for v, obj, fn in outside[:args.top]:
                    print(f"    {v:10,.0f}  {obj}: {fn}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4], "--profile" in sys.argv[5:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, what = int(sys.argv[2]), sys.argv[3]
        if what == "handshakes":
            handshakes(port, int(sys.argv[4]))
            print("done")
        else:
            print(echoes(port, int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])))
    else:
        main()
