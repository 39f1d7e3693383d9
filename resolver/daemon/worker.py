"""One worker: a :class:`~resolver.daemon.server.Server` on corenet's loop (asyncio's when
corenet's cannot be made), with its control socket and metrics on the same loop, until
SIGTERM/SIGINT stop it gracefully (listeners closed, queries in flight finished within
``shutdown_grace``); SIGHUP rereads the config without dropping the cache.

Alone, the worker is the daemon. Under a :class:`~resolver.daemon.supervisor.Supervisor` it
answers the supervisor on a private control socket and dies with it (:func:`die_with_parent`).
Here too live what a worker needs of the process it runs in: the descriptor limit fitted to
the config, the switch to the configured user, the collector's settings.
"""
from __future__ import annotations

import asyncio
import ctypes
import gc
import importlib
import logging
import os
import pwd
import resource
import signal
from dataclasses import replace

from resolver.daemon import config as config_mod
from resolver.daemon import logs, operations, reloads, scheduling
from resolver.daemon.config import Config, ConfigError
from resolver.daemon.config_reader import ConfigReader
from resolver.daemon.control import ControlServer
from resolver.daemon.metrics import MetricsServer, watch_gc
from resolver.daemon.operations import WorkerControl
from resolver.daemon.service import Notifier, give_group, remove_pidfile, write_pidfile
from resolver.loop_thread import new_loop

log = logging.getLogger("resolver.daemon.process")


#: Descriptors a worker keeps besides misses in flight, upstream sockets and TCP clients: its
#: listeners, the control and metrics sockets, the loop's own, log files, a margin.
FD_RESERVE = 64


def descriptors_needed(cfg: Config) -> int:
    """The descriptors ``cfg``'s bounds can hold at once: the reserve, a TCP client each, and
    a socket for each miss in flight or each upstream UDP query, whichever bound is larger
    (``max-upstream-sockets`` 0: no bound of its own)."""
    upstream = cfg.limits.max_upstream_sockets or cfg.max_inflight
    return FD_RESERVE + cfg.tcp_max_connections + max(cfg.max_inflight, upstream)


def fit_descriptors(cfg: Config) -> Config:
    """Raises the soft descriptor limit to what ``cfg``'s bounds need (no further, as
    Unbound's ``checkrlimit``), as far as the hard limit allows, and fits the bounds that
    hold descriptors to what was got, so that a flood meets a bound and never EMFILE: each
    TCP client holds one, each miss in flight one, each upstream UDP query one. TCP clients
    get at most half of what the reserve leaves; misses and upstream sockets get the rest.
    The limit is said in the log, and the bounds it lowers in a warning naming them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = descriptors_needed(cfg)
    if soft != resource.RLIM_INFINITY and soft < need:
        want = need if hard == resource.RLIM_INFINITY else min(need, hard)
        if want > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            except (ValueError, OSError) as e:
                log.warning("cannot raise the descriptor limit from %d to %d: %s", soft,
                            want, e)
    got = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if got == resource.RLIM_INFINITY:
        got = need
    usable = max(2, got - FD_RESERVE)
    tcp = min(cfg.tcp_max_connections, usable // 2)
    misses = max(1, min(cfg.max_inflight, usable - tcp))
    configured = cfg.limits.max_upstream_sockets
    upstream = max(1, min(configured or usable - tcp, usable - tcp))
    log.info("descriptors: limit %d (was %d, the config needs %d); misses in flight at most "
             "%d, upstream sockets %d, TCP clients %d", got, soft, need, misses, upstream, tcp)
    lowered = [f"{name} {old} to {new}" for name, old, new in (
        ("max-inflight", cfg.max_inflight, misses),
        ("max-upstream-sockets", configured or "unbounded", upstream),
        ("tcp-max-connections", cfg.tcp_max_connections, tcp)) if old != new]
    if lowered:
        log.warning("the descriptor limit (%d, hard limit %s) is below the %d the config "
                    "needs: lowered %s", got,
                    "unlimited" if hard == resource.RLIM_INFINITY else hard, need,
                    ", ".join(lowered))
    return replace(cfg, max_inflight=misses, tcp_max_connections=tcp,
                   limits=cfg.limits.replace(max_upstream_sockets=upstream))


def banner(server) -> str:
    """One line with what an operator checks first."""
    from corenet import __version__

    cfg, r = server.cfg, server.resolver
    where = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in server.addresses)
    if r.dnssec is not None:
        sources = list(cfg.trust_anchor) + \
            [f"{f} (RFC 5011)" for f in cfg.auto_trust_anchor_file]
        dnssec = f"DNSSEC validation on (trust anchor {', '.join(sources) or 'shipped root key'})"
    else:
        why = "--no-validate" if cfg.validate is False else "no trust anchor for these root hints"
        dnssec = f"DNSSEC validation OFF ({why})"
    hints = cfg.root_hints or "the real root servers"
    return (f"corenet-resolver {__version__} on {where}; resolving from {hints}; {dnssec}; "
            f"cache {cfg.cache_size // (1024 * 1024)} MiB; workers {cfg.workers}; "
            f"allow {', '.join(map(str, cfg.allow)) or 'nobody'}")


#: The standard library's modules that the daemon imports only when first needed (a
#: reload's config error, syslog turned on by a reload), imported before root is dropped:
#: the daemon's user may not read the interpreter's library (under root's home, say). The
#: installed package itself must be readable by that user (``process.unreadable_code``).
LATE_IMPORTS = ("difflib", "logging.handlers")


def drop_privileges(user: str | None) -> None:
    """Becomes ``user`` (its uid and primary group, no supplementary groups), for good: a
    root process that changes all its uids loses every capability. Nothing to do without
    a user, or when already running as that user; a non-root process cannot switch.
    :data:`LATE_IMPORTS` are imported first."""
    if not user:
        return
    pw = pwd.getpwnam(user)
    if os.getuid() == pw.pw_uid and os.geteuid() == pw.pw_uid:
        return
    if os.geteuid() != 0:
        raise PermissionError(f"only root can switch to user {user!r}")
    for name in LATE_IMPORTS:
        importlib.import_module(name)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:                                           # pragma: no cover - the kernel refused it
        raise PermissionError("root privileges could be regained after dropping them")
    log.info("running as user %s (uid %d, gid %d)", user, pw.pw_uid, pw.pw_gid)


#: prctl(2)'s option that sends the caller a signal when its parent dies
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Asks the kernel to send SIGTERM to this process when its parent ``parent`` dies (a
    supervisor killed with SIGKILL leaves no worker holding the port), and exits at once if
    the parent is already gone. The kernel forgets the request when the process changes its
    user or group, so a worker asks again after :func:`drop_privileges`."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot ask to die with the supervisor: %s",
                    os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:
        log.error("the supervisor (pid %d) is gone: stopping", parent)
        logging.shutdown()
        os._exit(1)


# Young objects the collector lets pile up before it looks (Python's default is 700). A burst of
# misses keeps thousands of short-lived objects alive at once; at 700 the collector would keep
# promoting them and then walking them again in the older generations (6% of a busy daemon's
# CPU in perf). Cycles are still collected, only in larger, rarer batches.
GC_YOUNG_THRESHOLD = 20_000


def settle_gc() -> None:
    """Once started: what exists now (modules, config, root hints) lives as long as the
    process, so it is moved out of the collector's sight (``gc.freeze``), the collector
    runs less often (see GC_YOUNG_THRESHOLD), and its passes are timed (``stats``' "gc")."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    watch_gc()


class Worker:
    """Serves ``cfg`` until stopped. ``control_path`` and ``metrics_addr``: where it answers
    (a supervised worker: its private socket, no metrics); ``notifier``: the service
    manager, told of readiness and reloads (a single worker's, else None); ``index``: which
    worker of several (None: the only one); ``supervisor``: the pid of the supervisor it
    dies with (None: it is the daemon); ``connection_table``: where the workers count
    ``tcp-connection-limit`` together (``resolver.daemon.connection_limits``)."""

    def __init__(self, cfg: Config, overrides, control_path: str | None, metrics_addr,
                 notifier: Notifier | None = None, tls: dict | None = None,
                 index: int | None = None, supervisor: int | None = None,
                 connection_table=None) -> None:
        self.cfg, self.overrides = cfg, overrides
        self.control_path, self.metrics_addr = control_path, metrics_addr
        self.notifier, self.tls, self.index = notifier, tls, index
        self.supervisor = supervisor
        #: the supervisor's ``connection_limits.Table``, whose row ``index`` is this worker's
        self.connection_table = connection_table
        self.base = cfg               # the config as read: a reload starts from it again
        self.server = None
        self.stop: asyncio.Event | None = None
        self.ctl: ControlServer | None = None
        self.met: MetricsServer | None = None
        self.pidfile = cfg.pidfile if notifier is not None else None     # not a worker's
        #: SIGHUP's and the ``reload`` command's: one reload at a time, the last one wins
        self.reload = reloads.OneAtATime(self._reload)
        self.reader = ConfigReader()    # reads the file for a reload, in a process of its own
        self.tasks: set[asyncio.Task] = set()      # reloads SIGHUP started

    def run(self) -> int:
        """Serves on a new loop until stopped; the exit status."""
        loop = new_loop()
        asyncio.set_event_loop(loop)
        scheduling.ask_for_slice(scheduling.LOOP_SLICE)
        loop.set_default_executor(scheduling.executor())
        try:
            return loop.run_until_complete(self.serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def serve(self) -> int:
        from resolver.daemon.server import Server

        loop = asyncio.get_running_loop()
        self.server = server = Server(self.cfg, tls_services=self.tls,
                                      connection_table=self.connection_table,
                                      index=self.index or 0)
        try:
            await server.start()
        except OSError as e:
            log.error("cannot listen: %s", e.strerror or e)
            await server.stop(0)
            return 1
        self.stop = asyncio.Event()
        why = await self._answer() or self._settle()
        if why:
            log.error("%s", why)
            await self._close(0)
            return 1
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.hangup)
        settle_gc()
        # One banner and one "ready" per daemon: with several workers the first one's banner,
        # the supervisor's "ready: N workers"; the others say theirs at verbosity 2.
        log.log(logging.INFO if not self.index else logs.DETAIL, "%s", banner(server))
        log.log(logging.INFO if self.index is None else logs.DETAIL, "ready")
        if self.notifier is not None:
            self.notifier.ready(banner(server))
        await self.stop.wait()
        log.info("stopping")
        if self.notifier is not None:
            self.notifier.stopping()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for task in list(self.tasks):
            task.cancel()
        await self._close(None)
        log.info("stopped")
        return 0

    def hangup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self) -> str | None:
        """Starts the control socket and metrics; why not, or None."""
        loop = asyncio.get_running_loop()
        control = WorkerControl(self.server, self.reload,
                                lambda: loop.call_later(0.05, self.stop.set))

        async def run_command(req: dict) -> dict:
            return await operations.run(operations.WORKER, control, req)

        cfg, path = self.cfg, self.control_path
        try:
            tcp = cfg if cfg.control_enable and path == cfg.control else None
            if path or tcp is not None:
                self.ctl = ControlServer(path, run_command, cfg.control_mode, cfg.limits,
                                         tcp)
                await self.ctl.start()
            if self.metrics_addr:
                self.met = MetricsServer(self.metrics_addr, self.server.stats, cfg.limits)
                await self.met.start()
        except OSError as e:
            return f"cannot start control/metrics: {e}"
        return None

    def _settle(self) -> str | None:
        """The pidfile written, the user switched to, the trust probes started: why not, or
        None."""
        cfg, path = self.cfg, self.control_path
        try:
            if cfg.user and self.ctl is not None and path and path != cfg.control:
                # A worker's private socket: its supervisor, as that user too, must reach it.
                pw = pwd.getpwnam(cfg.user)
                os.chown(path, pw.pw_uid, pw.pw_gid)
            elif self.ctl is not None and path:
                give_group(path, cfg.user)
            if self.pidfile:
                write_pidfile(self.pidfile, cfg.user)
            drop_privileges(cfg.user)
        except OSError as e:
            return f"cannot write the pidfile or run as user {cfg.user!r}: {e}"
        if self.supervisor is not None:
            die_with_parent(self.supervisor)        # asked again: a new user forgets it
        # RFC 5011 probes rewrite their state files: as the user the daemon now runs as
        return self.server.start_trust_probes()

    async def _close(self, grace: float | None) -> None:
        for x in (self.ctl, self.met):
            if x is not None:
                await x.close()
        await self.server.stop(grace)
        self.reader.close()
        if self.pidfile:
            remove_pidfile(self.pidfile)

    async def _reload(self) -> dict:
        """One reload: the config read again by the reader process (``config_reader``),
        what it needs built in a thread (``reloads.off_loop``), then applied on the loop in
        one step, the cache kept."""
        notifier, server, reader = self.notifier, self.server, self.reader
        if notifier is not None:
            notifier.reloading()
        base, overrides, control = self.base, self.overrides, server.cfg.control

        def build():
            fitted = fit_descriptors(reread(base, overrides, reader))
            reloads.breathe()
            return fitted, server.stage(replace(fitted, control=control))

        try:
            self.base, staged = await reloads.off_loop(build)
        except ConfigError as e:
            log.error("reload failed, keeping the old config: %s", e)
            if notifier is not None:
                notifier.ready(f"reload failed, old config kept: {e}")
            return {"ok": False, "error": str(e)}
        restart = server.apply(staged.cfg, staged)
        await reloads.swap_said()
        if restart:
            log.warning("reload: %s change only at restart", ", ".join(restart))
        log.info("config reloaded (cache kept)")
        if notifier is not None:
            notifier.ready(banner(server))
        return {"ok": True, "restart_needed": restart}


def reread(cfg: Config, overrides, reader: ConfigReader | None = None) -> Config:
    """``cfg``'s file read again with the command line's ``overrides`` (``cfg`` itself
    without a file), by ``reader`` when given."""
    if cfg.config_file is None:
        return cfg
    if reader is not None:
        return reader.read(cfg.config_file, overrides)
    return config_mod.build(cfg.config_file, overrides)
