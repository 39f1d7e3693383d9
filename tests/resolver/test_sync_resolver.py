"""resolver.sync, dns.resolver's synchronous shape: its engine on the private loop thread,
used from many threads at once and from inside a running loop; configured from resolv.conf
files (temporary ones, never the host's) as dnspython reads them; the module's functions on
``default_resolver``."""
from __future__ import annotations

import asyncio
import io
import socket
import threading
import time

import dns.exception
import dns.name
import dns.resolver
import pytest

from daemon_proc import Daemon

import resolver
from resolver import loop_thread, sync


@pytest.fixture
def lab_sync(lab):
    """lab_sync(**kw) -> sync.Resolver recursing from the lab (configure=False); closed
    after the test."""
    made = []

    def make(**kw):
        kw.setdefault("root_hints", lab.root_hints)
        kw.setdefault("port", lab.port)
        kw.setdefault("do_not_query_localhost", False)     # the lab is on loopback
        r = sync.Resolver(configure=False, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("syncd"), lab).start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


#: the lab's addresses of www.example.com.
WWW = ["192.0.2.1", "192.0.2.11"]


def _addresses(answer) -> list[str]:
    return sorted(rd.address for rd in answer)


def test_a_sync_resolver_recurses_from_the_lab_on_its_engine(lab_sync):
    r = lab_sync()
    assert r.nameservers == []                  # configure=False: recursion
    answer = r.resolve("www.example.com", "A")
    assert isinstance(answer, dns.resolver.Answer)
    assert _addresses(answer) == WWW
    assert isinstance(r._engine, resolver.Resolver)
    hits = r.stats.cache_hits
    assert _addresses(r.resolve("www.example.com")) == WWW
    assert r.stats.cache_hits == hits + 1       # the engine's cache answered
    with pytest.raises(dns.resolver.NXDOMAIN):
        r.resolve("nope.example.com")
    with pytest.raises(dns.resolver.NoAnswer):
        r.resolve("v4only.example.com", "AAAA")
    assert r.canonical_name("alias.example.com") == dns.name.from_text("www.example.com")
    assert "192.0.2.1" in set(r.resolve_name("www.example.com").addresses())
    with pytest.raises(dns.resolver.NXDOMAIN):
        r.resolve_address("192.0.2.1")
    assert sync.zone_for_name("www.example.com", resolver=r) == \
        dns.name.from_text("example.com")


def test_many_threads_at_once_get_their_own_answers(lab_sync):
    r = lab_sync()
    names = {"www.example.com": "answer", "nope.example.com": "NXDOMAIN",
             "alias.example.com": "answer", "v4only.example.com": "answer"}
    expected = {}
    for name in names:
        try:
            expected[name] = _addresses(r.resolve(name))
        except dns.resolver.NXDOMAIN:
            expected[name] = "NXDOMAIN"
    r.flush()
    results: dict = {}
    barrier = threading.Barrier(24)

    def work(i: int) -> None:
        barrier.wait()
        got = []
        for name in list(names)[i % 4:] + list(names)[:i % 4]:
            try:
                got.append((name, _addresses(r.resolve(name))))
            except dns.resolver.NXDOMAIN:
                got.append((name, "NXDOMAIN"))
            except Exception as exc:            # recorded, so the assertion names it
                got.append((name, repr(exc)))
        results[i] = got

    threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 24
    for got in results.values():
        assert dict(got) == expected


def test_inside_a_running_loop_it_blocks_that_loop_and_answers(lab_sync):
    r = lab_sync()
    ticks = []

    async def main():
        async def tick():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.001)

        ticker = asyncio.ensure_future(tick())
        await asyncio.sleep(0.01)
        before = len(ticks)
        answer = r.resolve("www.example.com")       # a sync call in the loop's thread
        during = len(ticks) - before
        ticker.cancel()
        return answer, during

    answer, during = asyncio.run(main())
    assert _addresses(answer) == WWW
    assert during == 0                          # the caller's loop waited, as with dnspython


def test_a_call_from_the_private_loop_thread_is_refused(lab_sync):
    r = lab_sync()
    with pytest.raises(RuntimeError, match="its own loop's thread"):
        loop_thread.call(r.resolve, "www.example.com")


def test_nameservers_from_a_resolv_conf_are_asked(daemon, tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\nsearch nowhere.example. example.com.\n")
    r = sync.Resolver(filename=str(conf), port=daemon.port)
    try:
        assert r.nameservers == ["127.0.0.1"]
        answer = r.resolve("www", search=True)
        assert answer.nameserver == "127.0.0.1" and answer.port == daemon.port
        assert str(answer.qname) == "www.example.com."
        # dnspython's idiom: read the file, then choose the port
        again = sync.Resolver(filename=io.StringIO("nameserver 127.0.0.1\n"))
        again.port = daemon.port
        assert _addresses(again.resolve("www.example.com")) == WWW
        again.close()
    finally:
        r.close()


def test_default_resolver_is_the_one_assigned(daemon, tmp_path, monkeypatch):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")
    chosen = sync.Resolver(filename=conf, port=daemon.port)
    monkeypatch.setattr(sync, "default_resolver", chosen)
    assert sync.get_default_resolver() is chosen
    answer = sync.resolve("www.example.com")
    assert answer.nameserver == "127.0.0.1" and _addresses(answer) == WWW
    assert sync.canonical_name("alias.example.com") == dns.name.from_text("www.example.com")
    assert "192.0.2.1" in set(sync.resolve_name("www.example.com").addresses())
    with pytest.raises(dns.resolver.NXDOMAIN):
        sync.resolve_address("192.0.2.1")
    assert sync.zone_for_name("www.example.com") == dns.name.from_text("example.com")
    at = sync.resolve_at("127.0.0.1", "www.example.com", port=daemon.port)
    assert at.nameserver == "127.0.0.1" and _addresses(at) == WWW
    chosen.close()


def test_reset_default_resolver_reads_the_hosts_file_as_dnspython(monkeypatch):
    """Both read /etc/resolv.conf (nothing is sent): the same nameservers, or the same
    error where the host has no usable file."""
    monkeypatch.setattr(sync, "default_resolver", None)

    def outcome(make):
        try:
            r = make()
        except dns.resolver.NoResolverConfiguration as exc:
            return ("NoResolverConfiguration", str(exc))
        return ([str(n) for n in r.nameservers], r.search, r.ndots)

    mine = outcome(sync.get_default_resolver)
    theirs = outcome(dns.resolver.Resolver)
    assert mine == theirs
    if mine[0] != "NoResolverConfiguration":
        first = sync.default_resolver
        sync.reset_default_resolver()
        assert sync.default_resolver is not first
        first.close()
        sync.default_resolver.close()


def test_missing_or_empty_files_raise_as_dnspython(tmp_path):
    empty = tmp_path / "empty.conf"
    empty.write_text("search example.com\n")
    for f in (str(tmp_path / "absent.conf"), str(empty)):
        with pytest.raises(dns.resolver.NoResolverConfiguration) as theirs:
            dns.resolver.Resolver(filename=f)
        with pytest.raises(dns.resolver.NoResolverConfiguration) as mine:
            sync.Resolver(filename=f)
        assert str(mine.value) == str(theirs.value)


def test_a_silent_nameserver_times_out_on_every_call_as_in_dnspython():
    """The same silent server (a socket that reads nothing) asked by dnspython's resolver and
    by ours: LifetimeTimeout on each call, each error a timed-out try of that server, named
    as dnspython names it."""
    from dns.nameserver import Do53Nameserver

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.20", 0))
        port = silent.getsockname()[1]
        theirs = dns.resolver.Resolver(configure=False)
        mine = sync.Resolver(configure=False)
        try:
            for r in (theirs, mine):
                r.nameservers = [Do53Nameserver("127.0.0.20", port)]
            for lifetime in (None, 0.5, 0.5):
                for r in (theirs, mine):
                    with pytest.raises(dns.resolver.LifetimeTimeout) as ei:
                        r.resolve("www.example.com", lifetime=lifetime)
                    errors = ei.value.kwargs["errors"]
                    assert {(e[0], type(e[3])) for e in errors} == {
                        (f"Do53:127.0.0.20@{port}", dns.exception.Timeout)}, errors
        finally:
            mine.close()


#: what dns.resolver has that resolver.sync leaves out (README: Coming from dnspython)
NOT_PROVIDED = {"read_registry", "try_ddr"}     # Windows' registry; DDR, which asks the network


def test_the_names_of_dns_resolver_are_there():
    import inspect

    theirs = dns.resolver.Resolver(configure=False)
    mine = sync.Resolver(configure=False)
    try:
        wanted = {n for n in dir(dns.resolver.Resolver) if not n.startswith("_")}
        wanted |= {n for n in vars(theirs) if not n.startswith("_")}
        assert {n for n in wanted if not hasattr(mine, n)} == NOT_PROVIDED & wanted
        functions = {n for n, v in vars(dns.resolver).items() if inspect.isfunction(v)
                     and v.__module__ == "dns.resolver" and not n.startswith("_")}
        assert {n for n in functions if not hasattr(sync, n)} == NOT_PROVIDED & functions
        for name in ("NXDOMAIN", "NoAnswer", "LifetimeTimeout", "NoNameservers",
                     "NoResolverConfiguration"):
            assert getattr(sync, name) is getattr(dns.resolver, name)
    finally:
        mine.close()


def test_nameservers_take_dnspythons_forms(daemon):
    from dns.nameserver import Do53Nameserver

    r = sync.Resolver(configure=False)
    try:
        r.nameserver_ports = {"127.0.0.1": daemon.port}
        r.nameservers = ("127.0.0.1",)                  # a tuple, its port from the map
        assert _addresses(r.resolve("www.example.com")) == WWW
        r.flush()
        r.nameservers = [Do53Nameserver("127.0.0.1", daemon.port)]
        assert r.resolve("www.example.com").port == daemon.port
        with pytest.raises(ValueError):
            r.nameservers = "127.0.0.1"
        r.nameservers = []                              # recursion again
        assert r.nameservers == []
    finally:
        r.close()


def _readme_program() -> str:
    import pathlib
    text = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    section = text.split("\n## dnspython's sync API\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_program_runs_unchanged_but_for_its_import(daemon, tmp_path, monkeypatch,
                                                              capsys):
    """The README's sync program, run with dnspython's import and with ours, each module's
    default resolver asking the lab's daemon: the same output."""
    ours = _readme_program()
    theirs = ours.replace("from resolver import sync as resolver",
                          "from dns import resolver", 1)
    assert theirs != ours
    stub = dns.resolver.Resolver(configure=False)
    stub.nameservers, stub.port = ["127.0.0.1"], daemon.port
    monkeypatch.setattr(dns.resolver, "default_resolver", stub)
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")
    mine = sync.Resolver(filename=conf, port=daemon.port)
    monkeypatch.setattr(sync, "default_resolver", mine)
    printed = []
    for code in (theirs, ours):
        exec(compile(code, "README.md", "exec"), {})
        printed.append(capsys.readouterr().out)
    mine.close()
    assert printed[0] == printed[1]
    assert printed[1].splitlines() == [
        "['192.0.2.1', '192.0.2.11'] www.example.com.", "www.example.com.",
        "no such name: nope.example.com."]


def test_the_nameservers_answers_are_validated_when_asked(signed_lab, tmp_path):
    """A daemon that does not validate forwards the signed lab; with validate=True the
    sync Resolver validates what it gives (AD, bogus refused), without it takes it as
    dnspython does."""
    import dns.flags

    lab, anchor = signed_lab
    d = Daemon(tmp_path / "fwd", lab, "--no-validate").start()
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")
    checked = sync.Resolver(filename=conf, port=d.port, trust_anchor=anchor, validate=True)
    plain = sync.Resolver(filename=conf, port=d.port, trust_anchor=anchor)
    try:
        assert checked.nameservers == plain.nameservers == ["127.0.0.1"]
        ans = checked.resolve("www.example.com")
        assert ans.response.flags & dns.flags.AD and _addresses(ans) == WWW
        assert ans.nameserver == "127.0.0.1"
        assert not checked.resolve("www.insecure.com").response.flags & dns.flags.AD
        with pytest.raises(dns.resolver.NoNameservers, match="DNSSEC"):
            checked.resolve("www.expired.com")
        assert checked.stats.dnssec_bogus >= 1
        ans = plain.resolve("www.expired.com")            # unchecked, as dnspython
        assert not ans.response.flags & dns.flags.AD
        assert plain.stats.dnssec_bogus == 0
    finally:
        checked.close()
        plain.close()
        assert d.stop() == 0, d.log_text()[-2000:]


def test_the_hand_over_is_bounded_and_cancels_what_it_gave_up():
    cancelled = threading.Event()

    async def slow():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        loop_thread.run(slow, timeout=0.2)
    assert time.monotonic() - t0 < 5
    assert cancelled.wait(5)                    # the private loop let it go
    assert loop_thread.call(lambda: 42) == 42   # and goes on serving
    with pytest.raises(ZeroDivisionError):
        loop_thread.call(lambda: 1 / 0)         # an error is raised in the caller


class _Interrupted(BaseException):
    """What a signal handler raises in the waiting thread, as Ctrl-C raises KeyboardInterrupt."""


def test_an_interrupted_call_is_given_up_and_not_run_later():
    """A caller interrupted while it waits for ``call`` (the private loop busy with other
    work) gets the interrupt at once; the work it gave up is not run when the loop comes to
    it, and nothing goes wrong there."""
    import signal
    private = loop_thread.loop()
    release, ran, errors = threading.Event(), [], []
    loop_thread.call(private.set_exception_handler, lambda loop, context: errors.append(context))
    private.call_soon_threadsafe(release.wait, 10)          # the loop's thread is busy

    def interrupt(signum, frame):
        raise _Interrupted()

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.monotonic()
        with pytest.raises(_Interrupted):
            loop_thread.call(ran.append, "given up")
        assert time.monotonic() - t0 < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        release.set()
    try:
        assert loop_thread.call(lambda: 42) == 42               # the loop came to it and on
        assert ran == [] and errors == []
    finally:
        loop_thread.call(private.set_exception_handler, None)


def test_answers_and_errors_leave_nothing_to_the_cycle_collector(lab_sync):
    """An answer or an error (NXDOMAIN, NoAnswer) crosses from the private loop to the
    caller's thread without leaving objects in reference cycles (an exception's traceback
    holds the frames it passed through), as dnspython's own resolver leaves none: a
    program asking many names that do not exist does not keep the collector busy."""
    import gc
    r = lab_sync()
    r.resolve("www.example.com")

    def work():
        for i in range(10):
            assert _addresses(r.resolve("www.example.com")) == WWW
            with pytest.raises(dns.resolver.NXDOMAIN):
                r.resolve(f"nope{i}.example.com")
            with pytest.raises(dns.resolver.NoAnswer):
                r.resolve("v4only.example.com", "AAAA")
    gc.collect()
    gc.disable()
    try:
        work()
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_override_system_resolver_answers_the_socket_module_as_dnspython_s(lab_sync, daemon):
    """``override_system_resolver(r)``: socket's functions answered by ``r``, ours recursing
    from the lab beside dnspython's asking the daemon; then the system's again."""
    ours = lab_sync()
    theirs = dns.resolver.Resolver(configure=False)
    theirs.nameservers, theirs.port = ["127.0.0.1"], daemon.port
    real = (socket.getaddrinfo, socket.gethostbyname_ex, socket.gethostbyaddr)
    got = {}
    for module, r in ((sync, ours), (dns.resolver, theirs)):
        module.override_system_resolver(r)
        try:
            got[module.__name__] = (
                sorted({ai[4][0] for ai in socket.getaddrinfo("www.example.com", 443,
                                                             socket.AF_INET)}),
                sorted(socket.gethostbyname_ex("www.example.com")[2]),   # any order
                socket.getaddrinfo("192.0.2.1", 80, socket.AF_INET, socket.SOCK_STREAM))
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("nope.example.com", 80)
        finally:
            module.restore_system_resolver()
        assert (socket.getaddrinfo, socket.gethostbyname_ex, socket.gethostbyaddr) == real
    assert got["resolver.sync"] == got["dns.resolver"]
    assert got["resolver.sync"][0] == WWW


def test_dnspython_s_other_names_are_here():
    """What dns.resolver names that code reaches for (``except resolver.Timeout``,
    ``r.cache = resolver.LRUCache()``) is here too, and assigning its cache is accepted."""
    for name in ("Timeout", "Cache", "LRUCache", "CacheBase", "CacheKey", "CacheStatistics",
                 "Answers", "EmptyHostAnswers"):
        assert getattr(sync, name) is getattr(dns.resolver, name), name
    assert issubclass(sync.LifetimeTimeout, sync.Timeout)
    r = sync.Resolver(configure=False)
    try:
        r.cache = sync.LRUCache(1000)
        r.cache = sync.Cache()
    finally:
        r.close()
