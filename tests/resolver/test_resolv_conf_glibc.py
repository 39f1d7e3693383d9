"""resolv.conf's ``options attempts:N`` and ``trust-ad``, the ``RES_OPTIONS`` and
``LOCALDOMAIN`` variables and the three nameservers glibc asks (MAXNS), honoured as glibc
honours them; and resolv.conf's options as BIND's dig takes them, for
``corenet-resolver query``.

glibc itself is the anchor: ``getent ahosts`` (attempts) and ``res_query`` through ctypes
(trust-ad) run in a private mount namespace where a temporary resolv.conf (and an
nsswitch.conf that asks DNS only) is bind-mounted over the host's, and resolver.sync.Resolver
reads the same file; both ask the same fake nameservers on 127.53.x.y port 53, which count
the queries and record their names and flags. dig runs in the same namespace next to
``corenet-resolver query`` reading the same file. Every wait is bounded (``timeout:1``).
Needs root, ``unshare``, ``getent`` and ``dig``.
"""
from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dns.flags
import dns.resolver
import pytest

from ports import refusing_port
from resolver import hostconf, sync
from resolver.limits import Limits

NAME = "host.example."
A, AAAA = 1, 28
AD = 0x0020
#: the engine's time limit for one question, above what the rounds of silent tries take
#: here (3 rounds over 2 servers of 1 s each)
LIMITS = Limits(max_query_time=15.0)
LIFETIME = 15.0
#: loopback addresses tried for a fake nameserver before port 53 is taken to be held
BIND_TRIES = 50


class FakeNameserver:
    """A nameserver on (address, 53) over UDP that records each query's (qtype, flags) and
    is ``silent`` (answers nothing), answers ``servfail``, ``nxdomain`` or ``nodata`` (no
    record of any type), or answers ``answer``: an A record for the A question, no data
    for the others, with AD set when ``ad``. ``mode`` may be a dict of modes by query name
    (``"www.host.a.test."``), ``nxdomain`` for the names it does not list."""

    def __init__(self, address: str, mode: str, ad: bool = False) -> None:
        self.address, self.mode, self.ad = address, mode, ad
        self.queries: list[tuple[int, int]] = []
        self.names: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.1)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def count(self, qtype: int) -> int:
        return sum(1 for t, _ in self.queries if t == qtype)

    def _serve(self) -> None:
        while self._running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            end = 12
            while end < len(data) and data[end]:
                end += data[end] + 1
            if end + 5 > len(data):
                continue
            flags, qtype = struct.unpack("!H", data[2:4])[0], struct.unpack(
                "!H", data[end + 1:end + 3])[0]
            self.queries.append((qtype, flags))
            self.names.append(_qname(data[12:end + 1]))
            question = data[12:end + 5]
            rd = flags & 0x0100
            mode = (self.mode if isinstance(self.mode, str)
                    else self.mode.get(self.names[-1], "nxdomain"))
            if mode == "silent":
                continue
            if mode in ("servfail", "nxdomain"):
                rcode = 2 if mode == "servfail" else 3
                header = struct.pack("!HHHHH", 0x8080 | rcode | rd, 1, 0, 0, 0)
                self.sock.sendto(data[:2] + header + question, peer)
                continue
            answer = b""
            if qtype == A and mode == "answer":
                answer = (b"\xc0\x0c" + struct.pack("!HHIH", A, 1, 60, 4)
                          + socket.inet_aton("192.0.2.7"))
            header = struct.pack("!HHHHH", 0x8080 | rd | (AD if self.ad else 0), 1,
                                 1 if answer else 0, 0, 0)
            self.sock.sendto(data[:2] + header + question + answer, peer)

    def close(self) -> None:
        self._running = False
        self._thread.join()
        self.sock.close()


def _qname(wire: bytes) -> str:
    labels, i = [], 0
    while i < len(wire) and wire[i]:
        labels.append(wire[i + 1:i + 1 + wire[i]].decode("ascii", "replace").lower())
        i += wire[i] + 1
    return ".".join(labels) + "."


@pytest.fixture
def nameservers():
    """``make(n, mode, ad=False)``: n fake nameservers on fresh loopback addresses."""
    made: list[FakeNameserver] = []

    def make(n: int, mode: str, ad: bool = False) -> list[FakeNameserver]:
        out = []
        for _ in range(BIND_TRIES):
            if len(out) == n:
                break
            address = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
            try:
                out.append(FakeNameserver(address, mode, ad))
            except OSError as e:       # taken: another address
                error = e
        made.extend(out)
        if len(out) < n:               # port 53 held on every address (a wildcard bind)
            from ci_policy import unavailable
            unavailable(f"port 53 is taken on 127.53.0.0/16 ({error}): glibc asks a "
                        "resolv.conf's nameservers on port 53 only")
        return out

    yield make
    for server in made:
        server.close()


def _conf(tmp_path, servers, options: str):
    path = tmp_path / "resolv.conf"
    path.write_text("".join(f"nameserver {s.address}\n" for s in servers)
                    + f"options {options}\n")
    return path


@pytest.fixture(scope="module")
def glibc(tmp_path_factory):
    """``run(resolv_conf, *argv)``: argv run with ``resolv_conf`` as /etc/resolv.conf (and
    DNS as the only hosts source) in a private mount namespace: the CompletedProcess."""
    missing = [tool for tool in ("unshare", "getent") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"glibc side by side needs {' and '.join(missing)} (util-linux, libc-bin)")
    if os.geteuid() != 0:
        pytest.skip("glibc side by side needs root (a mount namespace)")
    nsswitch = tmp_path_factory.mktemp("glibc") / "nsswitch.conf"
    nsswitch.write_text("hosts: dns\n")

    def run(resolv_conf, *argv: str) -> subprocess.CompletedProcess:
        script = ('mount --bind "$1" /etc/resolv.conf && '
                  '{ [ ! -e /etc/nsswitch.conf ] || mount --bind "$2" /etc/nsswitch.conf; } && '
                  'shift 2 && exec "$@"')
        return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(resolv_conf),
                               str(nsswitch), *argv],
                              capture_output=True, text=True, timeout=60)

    probe = run(os.devnull, "true")
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.strip()}")
    return run


def _reset(servers) -> None:
    for s in servers:
        s.queries.clear()
        s.names.clear()


def _counts(servers) -> list[tuple[int, int]]:
    """(A queries, AAAA queries) each server got."""
    return [(s.count(A), s.count(AAAA)) for s in servers]


def _corenet_outcomes(path, qtypes=("A", "AAAA")) -> dict:
    """Each qtype asked by a Resolver of its own reading ``path``, at the same time (as
    getent asks A and AAAA together): the exception's name, or the Answer."""
    def ask(qtype):
        r = sync.Resolver(filename=str(path), limits=LIMITS)
        r.lifetime = LIFETIME
        try:
            return r.resolve(NAME, qtype)
        except dns.exception.DNSException as exc:
            return type(exc).__name__
        finally:
            r.close()

    with ThreadPoolExecutor(len(qtypes)) as pool:
        return dict(zip(qtypes, pool.map(ask, qtypes)))


# ---- attempts:N ---------------------------------------------------------------------------------

@pytest.mark.parametrize("servers", [1, 2])
@pytest.mark.parametrize("attempts", [1, 2, 3, 4, 5])
def test_silent_nameservers_are_asked_attempts_times_each_as_by_glibc(
        glibc, nameservers, tmp_path, attempts, servers):
    fakes = nameservers(servers, "silent")
    path = _conf(tmp_path, fakes, f"timeout:1 attempts:{attempts}")
    out = glibc(path, "getent", "ahosts", NAME)
    assert out.returncode == 2, out              # no address
    theirs = _counts(fakes)
    assert theirs == [(attempts, attempts)] * servers     # glibc as resolv.conf(5) says
    _reset(fakes)
    t0 = time.monotonic()
    outcomes = _corenet_outcomes(path)
    took = time.monotonic() - t0
    assert _counts(fakes) == theirs
    assert outcomes == {"A": "LifetimeTimeout", "AAAA": "LifetimeTimeout"}
    # each try waited its timeout (1 s), as glibc's, and no longer than the rounds take
    assert attempts * servers - 0.5 < took < attempts * servers + 2.0


@pytest.mark.parametrize("servers", [1, 2])
@pytest.mark.parametrize("attempts", ["1", "2", "3"])
def test_failing_nameservers_are_asked_attempts_times_each_as_by_glibc(
        glibc, nameservers, tmp_path, attempts, servers):
    fakes = nameservers(servers, "servfail")
    path = _conf(tmp_path, fakes, f"timeout:1 attempts:{attempts}")
    out = glibc(path, "getent", "ahosts", NAME)
    assert out.returncode == 2, out
    theirs = _counts(fakes)
    assert theirs == [(int(attempts), int(attempts))] * servers
    _reset(fakes)
    outcomes = _corenet_outcomes(path)
    assert _counts(fakes) == theirs
    assert outcomes == {"A": "NoNameservers", "AAAA": "NoNameservers"}


@pytest.mark.parametrize("attempts,tries", [("0", 0), ("x", 0), ("-1", 0), ("5", 5),
                                            ("9", 5), ("4x", 4)])
def test_the_attempts_value_is_read_as_glibc_reads_it(glibc, nameservers, tmp_path, attempts,
                                                       tries):
    """glibc reads N with atoi (no digits: 0, and then it asks nobody) and caps it at 5."""
    fakes = nameservers(1, "servfail")
    path = _conf(tmp_path, fakes, f"timeout:1 attempts:{attempts}")
    assert glibc(path, "getent", "ahosts", NAME).returncode == 2
    theirs = _counts(fakes)
    assert theirs == [(tries, tries)]
    _reset(fakes)
    assert _corenet_outcomes(path) == {"A": "NoNameservers", "AAAA": "NoNameservers"}
    assert _counts(fakes) == theirs
    assert hostconf.nameserver_options(path).attempts == tries


def test_the_last_attempts_option_wins_as_in_glibc(glibc, nameservers, tmp_path):
    fakes = nameservers(1, "servfail")
    path = tmp_path / "resolv.conf"
    path.write_text(f"options attempts:4\nnameserver {fakes[0].address}\n"
                    f"options timeout:1 attempts:2\n")
    assert glibc(path, "getent", "ahosts", NAME).returncode == 2
    theirs = _counts(fakes)
    assert theirs == [(2, 2)]
    _reset(fakes)
    _corenet_outcomes(path)
    assert _counts(fakes) == theirs


def test_a_lifetime_shorter_than_the_rounds_ends_the_call(nameservers, tmp_path):
    """attempts bounds the tries; the lifetime still bounds the call."""
    fakes = nameservers(2, "silent")
    path = _conf(tmp_path, fakes, "timeout:1 attempts:3")
    r = sync.Resolver(filename=str(path), limits=LIMITS)
    r.lifetime = 2.5
    t0 = time.monotonic()
    with pytest.raises(dns.resolver.LifetimeTimeout):
        r.resolve(NAME, "A")
    assert time.monotonic() - t0 < 3.5
    assert sum(s.count(A) for s in fakes) < 6
    r.close()


def test_without_attempts_a_silent_nameserver_is_asked_until_the_lifetime(nameservers,
                                                                          tmp_path):
    """The tries of a call with attempts:N are each server's whatever its down mark (as
    glibc's); without attempts, as dnspython's, a silent server is asked again, each try
    waiting the timeout, until the lifetime ends (never given up on after a few timeouts)."""
    fakes = nameservers(1, "silent")
    path = _conf(tmp_path, fakes, "timeout:1")
    r = sync.Resolver(filename=str(path), limits=LIMITS)
    r.lifetime = 3.5
    t0 = time.monotonic()
    with pytest.raises(dns.resolver.LifetimeTimeout):
        r.resolve(NAME, "A")
    assert fakes[0].count(A) == 4 > LIMITS.server_down_timeouts
    assert 3.4 < time.monotonic() - t0 < 5
    r.close()


def test_without_attempts_a_servfail_ends_the_server_s_part_as_in_dnspython(nameservers,
                                                                          tmp_path):
    """dnspython's behaviour, kept when the file sets no attempts: a server that answered
    SERVFAIL is not asked again for the question, unless ``retry_servfail``; then it is
    asked until the lifetime."""
    fakes = nameservers(1, "servfail")
    path = _conf(tmp_path, fakes, "timeout:1")
    r = sync.Resolver(filename=str(path), limits=Limits(max_query_time=2.0))
    assert r.attempts is None
    r.lifetime = 2.0
    with pytest.raises(dns.resolver.NoNameservers):
        r.resolve(NAME, "A")
    assert fakes[0].count(A) == 1
    r.retry_servfail = True
    with pytest.raises(dns.exception.DNSException):
        r.resolve("again." + NAME, "A")
    assert fakes[0].count(A) > 5
    r.close()


# ---- trust-ad -----------------------------------------------------------------------------------

_RES_QUERY = """
import ctypes, sys
buf = ctypes.create_string_buffer(4096)
n = ctypes.CDLL("libresolv.so.2").res_query(sys.argv[1].encode(), 1, 1, buf, len(buf))
print(int.from_bytes(buf.raw[2:4], "big") if n > 0 else -1)
"""


@pytest.mark.parametrize("upstream_ad", [True, False], ids=["upstream AD", "upstream no AD"])
@pytest.mark.parametrize("trust_ad", [True, False], ids=["trust-ad", "no trust-ad"])
def test_the_ad_bit_is_asked_for_and_kept_as_by_glibc(glibc, nameservers, tmp_path, trust_ad,
                                                      upstream_ad):
    fakes = nameservers(1, "answer", ad=upstream_ad)
    path = _conf(tmp_path, fakes, "timeout:1" + (" trust-ad" if trust_ad else ""))
    out = glibc(path, sys.executable, "-c", _RES_QUERY, NAME)
    assert out.returncode == 0, out
    glibc_reply_flags = int(out.stdout)
    assert glibc_reply_flags >= 0, out
    [(qtype, glibc_query_flags)] = fakes[0].queries
    assert bool(glibc_query_flags & AD) == trust_ad              # glibc >= 2.31
    assert bool(glibc_reply_flags & AD) == (trust_ad and upstream_ad)
    _reset(fakes)
    r = sync.Resolver(filename=str(path))
    answer = r.resolve(NAME, "A")
    [(qtype, query_flags)] = fakes[0].queries
    assert query_flags & AD == glibc_query_flags & AD
    assert answer.response.flags & dns.flags.AD == glibc_reply_flags & AD
    # and from the cache the same
    assert r.resolve(NAME, "A").response.flags & dns.flags.AD == glibc_reply_flags & AD
    assert len(fakes[0].queries) == 1
    assert r.trust_ad == trust_ad
    r.close()


def test_turning_trust_ad_off_forgets_the_answers_it_marked(nameservers, tmp_path):
    fakes = nameservers(1, "answer", ad=True)
    path = _conf(tmp_path, fakes, "timeout:1 trust-ad")
    r = sync.Resolver(filename=str(path))
    assert r.resolve(NAME, "A").response.flags & dns.flags.AD
    r.trust_ad = False
    answer = r.resolve(NAME, "A")
    assert not answer.response.flags & dns.flags.AD
    assert [flags & AD for _, flags in fakes[0].queries] == [AD, 0]
    r.close()


# ---- where the options are read -----------------------------------------------------------------

def test_reset_and_configure_false_clear_the_options(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 192.0.2.53\noptions attempts:3 trust-ad\n")
    r = sync.Resolver(filename=str(path))
    assert (r.attempts, r.trust_ad) == (3, True)
    r.reset()
    assert (r.attempts, r.trust_ad) == (None, False)
    r.read_resolv_conf(open(path))
    assert (r.attempts, r.trust_ad) == (3, True)
    r.close()
    r = sync.Resolver(configure=False)
    assert (r.attempts, r.trust_ad) == (None, False)
    r.close()


def test_the_aiohttp_resolver_asks_the_file_s_nameservers_as_glibc(tmp_path):
    pytest.importorskip("aiohttp")
    from resolver.adapters import AiohttpResolver

    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 192.0.2.53\noptions attempts:2 trust-ad\n")
    r = AiohttpResolver(filename=path).resolver
    assert (r.forward, r.attempts, r.trust_ad) == (["192.0.2.53"], 2, True)
    path.write_text("nameserver 192.0.2.53\n")
    r = AiohttpResolver(filename=path).resolver
    assert (r.attempts, r.trust_ad) == (None, False)


@pytest.mark.parametrize("timeout,waits", [("3", 3), ("0", 1), ("x", 1)])
def test_the_aiohttp_resolver_waits_the_file_s_timeout_as_glibc(glibc, nameservers, tmp_path,
                                                               timeout, waits):
    """Each try waits ``timeout:N`` seconds, read as glibc reads it (atoi; below 1 is 1):
    the one try waits at least that long, as glibc's (no upper bound: a loaded machine
    only adds to it)."""
    pytest.importorskip("aiohttp")
    import asyncio

    from resolver.adapters import AiohttpResolver

    fakes = nameservers(1, "silent")
    path = _conf(tmp_path, fakes, f"timeout:{timeout} attempts:1")
    t0 = time.monotonic()
    assert glibc(path, "getent", "ahosts", NAME).returncode == 2
    their_time = time.monotonic() - t0
    assert their_time > waits - 0.2, their_time
    _reset(fakes)

    async def ours():
        r = AiohttpResolver(filename=path, hosts=None)
        assert r.resolver.timeout == waits
        try:
            t0 = time.monotonic()
            with pytest.raises(OSError):
                await r.resolve(NAME, 80)
            return time.monotonic() - t0
        finally:
            await r.close()

    our_time = asyncio.run(ours())
    assert fakes[0].count(A) == 1              # one try, as glibc's, which waited the timeout
    assert our_time > waits - 0.2, (our_time, their_time)


@pytest.mark.parametrize("options,env,timeout", [
    ("timeout:3", None, 3), ("timeout:45", None, hostconf.MAX_TIMEOUT), ("timeout:-2", None, 1),
    ("timeout:2x", None, 2), ("attempts:2", None, None), ("timeout:3", "timeout:4", 4)])
def test_the_timeout_value_is_read_as_glibc_reads_it(tmp_path, monkeypatch, options, env,
                                                     timeout):
    path = tmp_path / "resolv.conf"
    path.write_text(f"nameserver 192.0.2.53\noptions {options}\n")
    if env is None:
        monkeypatch.delenv("RES_OPTIONS", raising=False)
    else:
        monkeypatch.setenv("RES_OPTIONS", env)
    assert hostconf.nameserver_options(path).timeout == timeout


# ---- RES_OPTIONS and LOCALDOMAIN ----------------------------------------------------------------

@pytest.mark.parametrize("file_options,res_options", [
    ("timeout:1 attempts:1", "attempts:2"), ("timeout:1 attempts:3", "attempts:1"),
    ("timeout:1", "attempts:2 attempts:1")])
def test_res_options_come_after_the_file_s_as_in_glibc(glibc, nameservers, tmp_path,
                                                      monkeypatch, file_options, res_options):
    """glibc applies the environment's RES_OPTIONS after the file's options."""
    fakes = nameservers(1, "servfail")
    path = _conf(tmp_path, fakes, file_options)
    monkeypatch.setenv("RES_OPTIONS", res_options)
    assert glibc(path, "getent", "ahosts", NAME).returncode == 2
    theirs = _counts(fakes)
    tries = int(res_options.split(":")[-1])
    assert theirs == [(tries, tries)]
    _reset(fakes)
    assert _corenet_outcomes(path) == {"A": "NoNameservers", "AAAA": "NoNameservers"}
    assert _counts(fakes) == theirs
    assert hostconf.nameserver_options(path).attempts == tries


def test_res_options_trust_ad_as_in_glibc(glibc, nameservers, tmp_path, monkeypatch):
    fakes = nameservers(1, "answer", ad=True)
    path = _conf(tmp_path, fakes, "timeout:1")
    monkeypatch.setenv("RES_OPTIONS", "trust-ad")
    out = glibc(path, sys.executable, "-c", _RES_QUERY, NAME)
    assert int(out.stdout) & AD, out
    [(_, glibc_query_flags)] = fakes[0].queries
    assert glibc_query_flags & AD
    _reset(fakes)
    r = sync.Resolver(filename=str(path))
    assert r.trust_ad
    assert r.resolve(NAME, "A").response.flags & dns.flags.AD
    [(_, query_flags)] = fakes[0].queries
    assert query_flags & AD
    r.close()


@pytest.mark.parametrize("env", [{}, {"LOCALDOMAIN": "z.test"}, {"RES_OPTIONS": "ndots:3"},
                                 {"LOCALDOMAIN": "z.test y.test", "RES_OPTIONS": "ndots:3"},
                                 {"LOCALDOMAIN": ""}],
                         ids=["none", "localdomain", "ndots", "both", "empty localdomain"])
def test_the_getaddrinfo_search_takes_localdomain_and_res_options_as_glibc(
        glibc, nameservers, tmp_path, monkeypatch, env):
    """getaddrinfo.install's search list and ndots: LOCALDOMAIN replaces the file's
    search list, RES_OPTIONS's ndots:N comes after the file's, as glibc's getaddrinfo."""
    fakes = nameservers(1, "nxdomain")
    path = tmp_path / "resolv.conf"
    path.write_text(f"nameserver {fakes[0].address}\nsearch a.test\n"
                    "options timeout:1 attempts:1 ndots:1\n")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert glibc(path, "getent", "ahosts", "www.host").returncode == 2
    theirs = list(dict.fromkeys(fakes[0].names))          # the names, in the order asked
    _reset(fakes)

    assert isinstance(_installed_getaddrinfo(fakes[0], path, "www.host"), int)
    assert list(dict.fromkeys(fakes[0].names)) == theirs


def _installed_getaddrinfo(server: FakeNameserver, path, host: str):
    """``loop.getaddrinfo(host, 80)`` through ``resolver.install`` reading ``path``, with a
    resolver that asks ``server`` once a question: the sorted addresses, or the
    gaierror's errno."""
    import asyncio

    import resolver
    from resolver.getaddrinfo import install

    async def ask():
        r = resolver.Resolver(forward=[server.address], attempts=1, limits=LIMITS)
        loop = asyncio.get_running_loop()
        install(loop, r, hosts=None, resolv_conf=path)
        try:
            infos = await loop.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
            return sorted({info[4][0] for info in infos})
        except socket.gaierror as e:
            return e.errno
        finally:
            await r.close()

    return asyncio.run(ask())


#: a name the search rules turn into www.host.a.test., www.host.b.test. and www.host.
_SEARCHED = ["www.host.a.test.", "www.host.b.test.", "www.host."]

#: glibc's getaddrinfo in the private namespace: the sorted addresses, or the gaierror's errno
_GETADDRINFO = (
    "import socket, sys\n"
    "try:\n"
    "    print(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80,"
    " type=socket.SOCK_STREAM)}))\n"
    "except socket.gaierror as e:\n"
    "    print(e.errno)\n")


@pytest.mark.parametrize("modes", [
    {"www.host.a.test.": "servfail", "www.host.b.test.": "answer"},
    {"www.host.a.test.": "nodata", "www.host.b.test.": "answer"},
    {"www.host.a.test.": "servfail"},
    {name: "servfail" for name in _SEARCHED},
    {"www.host.b.test.": "nodata"},
    {"www.host.a.test.": "servfail", "www.host.b.test.": "nodata"},
    {},
], ids=["servfail then answer", "nodata then answer", "servfail then nxdomain",
        "servfail everywhere", "nodata", "servfail then nodata", "nxdomain everywhere"])
def test_the_getaddrinfo_search_goes_past_failures_as_glibc(glibc, nameservers, tmp_path,
                                                            monkeypatch, modes):
    """glibc's getaddrinfo goes on to the next search name after NXDOMAIN, no data or a
    SERVFAIL (with no address anywhere: EAI_NODATA, EAI_AGAIN or EAI_NONAME): the same names
    asked in the same order, the same addresses or the same error."""
    theirs, ours = _getaddrinfo_both(glibc, nameservers, tmp_path, monkeypatch, modes,
                                     "www.host")
    assert theirs[1][0] == _SEARCHED[0]
    assert ours == theirs


@pytest.mark.parametrize("mode", ["answer", "nodata", "nxdomain", "servfail", "silent"])
def test_the_getaddrinfo_of_an_absolute_name_answers_as_glibc(glibc, nameservers, tmp_path,
                                                              monkeypatch, mode):
    """A name with its final dot is the only one asked (no search): the same addresses or
    the same error as glibc's getaddrinfo, a server that never answers included (EAI_AGAIN
    once the tries are over)."""
    theirs, ours = _getaddrinfo_both(glibc, nameservers, tmp_path, monkeypatch, mode,
                                     "www.host.")
    assert theirs[1] == ["www.host."]
    assert ours == theirs


def _getaddrinfo_both(glibc, nameservers, tmp_path, monkeypatch, modes, host: str):
    """``getaddrinfo(host)`` by glibc, then through ``resolver.install``, each reading the
    same resolv.conf (search a.test b.test, ndots:2) and asking one fake nameserver in
    ``modes``: for each, (the sorted addresses or the errno, the names asked in order)."""
    import ast

    monkeypatch.delenv("LOCALDOMAIN", raising=False)
    monkeypatch.delenv("RES_OPTIONS", raising=False)
    fakes = nameservers(1, modes)
    path = tmp_path / "resolv.conf"
    path.write_text(f"nameserver {fakes[0].address}\nsearch a.test b.test\n"
                    "options timeout:1 attempts:1 ndots:2\n")
    out = glibc(path, sys.executable, "-c", _GETADDRINFO, host)
    theirs = (ast.literal_eval(out.stdout.strip()), list(dict.fromkeys(fakes[0].names)))
    _reset(fakes)
    ours = _installed_getaddrinfo(fakes[0], path, host)
    return theirs, (ours, list(dict.fromkeys(fakes[0].names)))


def test_the_dnspython_shaped_reader_ignores_localdomain_as_dnspython(tmp_path, monkeypatch):
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 192.0.2.53\nsearch a.test\noptions ndots:2\n")
    monkeypatch.setenv("LOCALDOMAIN", "z.test")
    monkeypatch.setenv("RES_OPTIONS", "ndots:4 attempts:2")
    theirs = dns.resolver.Resolver(filename=str(path))
    r = sync.Resolver(filename=str(path))
    assert (r.search, r.ndots) == (theirs.search, theirs.ndots)
    assert r.attempts == 2            # what glibc reads, RES_OPTIONS included
    r.close()


# ---- MAXNS --------------------------------------------------------------------------------------

@pytest.mark.parametrize("first", ["servfail", "silent"])
def test_glibc_asks_the_first_three_nameservers_and_so_does_the_aiohttp_resolver(
        glibc, nameservers, tmp_path, first):
    """A fourth nameserver that answers is never asked, by glibc nor by the aiohttp
    resolver, whether the first three fail or stay silent."""
    pytest.importorskip("aiohttp")
    import asyncio

    from resolver.adapters import AiohttpResolver

    fakes = nameservers(3, first) + nameservers(1, "answer")
    path = _conf(tmp_path, fakes, "timeout:1 attempts:1")
    assert glibc(path, "getent", "ahosts", NAME).returncode == 2
    theirs = _counts(fakes)
    assert theirs == [(1, 1)] * 3 + [(0, 0)]
    _reset(fakes)

    async def ours():
        r = AiohttpResolver(filename=path, hosts=None)
        try:
            with pytest.raises(OSError):
                await r.resolve(NAME, 80)
        finally:
            await r.close()

    asyncio.run(ours())
    assert _counts(fakes)[3] == (0, 0)
    # aiohttp asks for IPv4 addresses (family AF_INET): A queries only
    assert [a for a, _ in _counts(fakes)] == [a for a, _ in theirs]


def test_the_dnspython_shaped_resolver_asks_every_nameserver_as_dnspython(nameservers,
                                                                          tmp_path):
    fakes = nameservers(3, "silent") + nameservers(1, "answer")
    path = _conf(tmp_path, fakes, "timeout:1 attempts:1")
    assert len(dns.resolver.Resolver(filename=str(path)).nameservers) == 4
    r = sync.Resolver(filename=str(path), limits=LIMITS)
    r.lifetime = LIFETIME
    assert r.nameservers == [s.address for s in fakes]
    assert [rd.address for rd in r.resolve(NAME, "A")] == ["192.0.2.7"]
    r.close()


# ---- dig ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("options,args", [
    ("timeout:1 attempts:2", []), ("timeout:2 attempts:1", []),
    ("timeout:1 attempts:4", ["+tries=2"]), ("timeout:1 attempts:4", ["+retry=0"]),
    ("timeout:3 attempts:1", ["+time=1"]), ("timeout:1 attempts:0", ["+time=1"]),
    ("timeout:0 attempts:1", ["+time=1"])])
def test_query_takes_resolv_conf_s_timeout_and_attempts_as_dig(glibc, nameservers, tmp_path,
                                                               monkeypatch, options, args):
    """BIND's dig takes ``options timeout:N`` and ``attempts:N`` (above 0) as +time and
    +tries; given on the command line they win. Neither RES_OPTIONS nor LOCALDOMAIN is
    read (it is set here and changes nothing)."""
    from test_dig_query import query

    if shutil.which("dig") is None:
        from ci_policy import unavailable
        unavailable("BIND's dig (bind9-dnsutils)")
    monkeypatch.setenv("RES_OPTIONS", "attempts:3 timeout:2")
    fakes = nameservers(1, "silent")
    path = _conf(tmp_path, fakes, options)
    argv = ["a.example", "+nocookie", *args]
    t0 = time.monotonic()
    theirs = glibc(path, "dig", *argv)
    their_time = time.monotonic() - t0
    their_count = len(fakes[0].names)
    assert theirs.returncode == 9, theirs
    _reset(fakes)
    t0 = time.monotonic()
    ours = query(*argv, env={"CORENET_RESOLV_CONF": str(path)})
    our_time = time.monotonic() - t0
    assert ours.returncode == 9, ours.stderr
    assert len(fakes[0].names) == their_count
    # each try waited dig's timeout: the same, but for our interpreter's start (bounded
    # loosely: the run may share its cores with other suites)
    assert their_time - 0.5 < our_time < their_time + 3.0, (our_time, their_time)


@pytest.mark.parametrize("lines", [
    "options attempts:x", "options timeout:2x", "options ndots:-1", "options ndots:256",
    "options attempts:256", "options timeout:0x5", "options", "nameserver foo",
    "nameserver 127.0.0.2 127.0.0.3", "nameserver", "domain", "domain a.test b.test",
    "search", "sortlist x", "sortlist 127.0.0.1/255.0.0.0", "options timeout:+2 attempts:1",
    "options attempts:-0 ndots:255", "options timeout:", "nameserver 127.0.0.2 # a comment",
    "nameserver ::1%lo", "nameserver ::1%1", "nameserver fe80::1%lo", "nameserver 127.1",
    "bogus line", "search a..b",
    "nameserver 127.0.0.2\nnameserver 127.0.0.3\nnameserver junk",
    "options ndots:1 \n ndots:x", "bogus\nnameserver junk", "search\nsortlist junk",
    "sortlist\noptions ndots:1", "domain a.test ;x\nfoo", "nameserver 127.0.0.2 \nfoo"])
@pytest.mark.parametrize("end", ["\n", ""], ids=["newline", "no newline"])
def test_query_refuses_the_resolv_conf_dig_refuses(glibc, nameservers, tmp_path, lines, end):
    """BIND's dig reads resolv.conf first and stops (status 1, "parse of ... failed") on a
    file its reader refuses, before any option or query; what it accepts, it asks. The
    lines come last, with or without a newline at the end of the file."""
    from test_dig_query import query

    if shutil.which("dig") is None:
        from ci_policy import unavailable
        unavailable("BIND's dig (bind9-dnsutils)")
    fakes = nameservers(1, "servfail")
    path = tmp_path / "resolv.conf"
    path.write_text(f"nameserver {fakes[0].address}\n{lines}{end}")
    argv = ["a.example", "+nocookie", "+tries=1", "+time=1"]
    theirs = glibc(path, "dig", *argv)
    refused = "parse of /etc/resolv.conf failed" in theirs.stderr
    assert theirs.returncode == (1 if refused else 0), theirs
    ours = query(*argv, env={"CORENET_RESOLV_CONF": str(path)})
    assert ours.returncode == theirs.returncode, ours.stderr
    assert (f"parse of {path} failed" in ours.stderr) == refused, ours.stderr
    assert ours.stdout.strip() == "" if refused else "status: SERVFAIL" in ours.stdout


@pytest.mark.parametrize("lines", [
    "nameserver 127.0.0.61\nnameserver 127.0.0.62\nnameserver 127.0.0.63\nnameserver 127.0.0.64",
    "nameserver 0.0.0.0", "nameserver ::1\nnameserver 127.0.0.61", "options ndots:1", ""],
    ids=["four", "any address", "both families", "none", "empty"])
@pytest.mark.parametrize("family", ["", "-4", "-6"])
def test_query_asks_the_nameservers_dig_asks(glibc, tmp_path, lines, family):
    """dig asks the first three nameservers, 0.0.0.0 as 127.0.0.1, ::1 and 127.0.0.1 when
    the file names none, and the loopback address of -4's or -6's family when it names
    none of that family: the same servers, in the same order (each refuses the port)."""
    from test_dig_query import query

    if shutil.which("dig") is None:
        from ci_policy import unavailable
        unavailable("BIND's dig (bind9-dnsutils)")
    path = tmp_path / "resolv.conf"
    path.write_text(lines + "\n")

    def asked(out: str) -> list[str]:
        return [line.split()[4] for line in out.splitlines()
                if line.startswith(";; communications error to ")]

    # the port refuses on every address the cases name, held until both clients are done
    with refusing_port(socket.SOCK_DGRAM, "127.0.0.1", "127.0.0.61", "127.0.0.62",
                       "127.0.0.63", "127.0.0.64", "::1") as port:
        argv = [*filter(None, [family]), "-p", str(port), "+time=1", "+tries=1", "a.example"]
        theirs = glibc(path, "dig", *argv)
        ours = query(*argv, env={"CORENET_RESOLV_CONF": str(path)})
    assert theirs.returncode == ours.returncode == 9, (theirs, ours.stderr)
    assert asked(theirs.stdout)
    assert asked(ours.stdout) == asked(theirs.stdout), ours.stdout + theirs.stdout


@pytest.mark.parametrize("name", ["x", "a.b", "a.b.c"])
@pytest.mark.parametrize("lines", [
    "search s.test t.test", "search s.test t.test\noptions ndots:2",
    "search .\noptions ndots:3", "domain d.test\nsearch s.test", "search s.test\ndomain d.test",
    "search a.test b.test c.test d.test e.test f.test g.test h.test i.test\noptions ndots:20",
    "options ndots:16\nsearch x.test"],
    ids=["search", "ndots", "root", "domain then search", "search then domain",
         "nine domains", "ndots above glibc's cap"])
def test_query_searches_as_dig(glibc, nameservers, tmp_path, lines, name):
    """+search as dig 9.18 reads resolv.conf (BIND's reader: up to 8 domains, the last of
    search and domain, ndots up to 255) and orders the names: a name with ndots dots or
    more is absolute, no search; the questions asked, in order, against NXDOMAIN."""
    from test_dig_query import query

    if shutil.which("dig") is None:
        from ci_policy import unavailable
        unavailable("BIND's dig (bind9-dnsutils)")
    fakes = nameservers(1, "nxdomain")
    path = tmp_path / "resolv.conf"
    path.write_text(f"nameserver {fakes[0].address}\n{lines}\n")
    argv = ["+search", "+showsearch", "+noall", "+question", "+time=1", "+tries=1",
            "+nocookie", name]

    def questions(out: str) -> list[str]:
        return [line.split()[0] for line in out.splitlines() if line.startswith(";")]

    theirs = glibc(path, "dig", *argv)
    ours = query(*argv, env={"CORENET_RESOLV_CONF": str(path)})
    assert theirs.returncode == ours.returncode == 0, (theirs, ours.stderr)
    assert questions(theirs.stdout)
    assert questions(ours.stdout) == questions(theirs.stdout), ours.stdout + theirs.stdout


@pytest.mark.parametrize("args", [["mx"], ["-t", "mx"], ["txt", "ch"], []])
def test_query_without_a_name_asks_the_root_s_ns_as_dig(glibc, nameservers, tmp_path, args):
    """dig with no name asks the root's NS, whatever type is given (the class kept)."""
    from test_dig_query import query

    if shutil.which("dig") is None:
        from ci_policy import unavailable
        unavailable("BIND's dig (bind9-dnsutils)")
    fakes = nameservers(1, "nxdomain")
    path = _conf(tmp_path, fakes, "timeout:1 attempts:1")
    argv = [*args, "+noall", "+question", "+nocookie"]
    theirs = glibc(path, "dig", *argv)
    ours = query(*argv, env={"CORENET_RESOLV_CONF": str(path)})
    assert theirs.returncode == ours.returncode == 0, (theirs, ours.stderr)
    assert ours.stdout.split() == theirs.stdout.split() != []
