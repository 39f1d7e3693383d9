"""The daemon's process life: one worker, or a parent and N worker processes.

A worker runs one :class:`~resolver.daemon.server.Server` on corenet's loop (asyncio's when corenet's
cannot be made), with its control socket and metrics on the same loop. SIGTERM/SIGINT stop
it gracefully (listeners closed, queries in flight finished within ``shutdown_grace``);
SIGHUP rereads the config without dropping the cache.

With ``workers > 1`` the parent forks the workers before making any loop; each binds its own
sockets with SO_REUSEPORT and has its own cache. The parent serves the control socket and
metrics, asking each worker over a private control socket and summing their figures, and
passes signals on. A worker that dies takes the daemon down (exit 1), for the supervisor.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import pwd
import resource
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from typing import Any

from resolver.daemon import config as config_mod
from resolver.daemon import logs
from resolver.daemon.config import Config, ConfigError
from resolver.daemon.control import ControlError, ControlServer, arequest
from resolver.daemon import operations
from resolver.daemon.metrics import MetricsServer, hit_rates, merge, since, watch_gc
from resolver.daemon.operations import WorkerControl
from resolver.daemon.service import (Notifier, give_group, prepare_control, remove_pidfile,
                                     write_pidfile)

log = logging.getLogger("resolver.daemon.process")


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        from corenet.loop import new_event_loop
        return new_event_loop()
    except Exception as e:       # pragma: no cover - corenet not built
        log.warning("corenet's loop unavailable (%s); using asyncio's", e)
        return asyncio.new_event_loop()


def run(cfg: Config, overrides: dict[str, Any] | None = None) -> int:
    """Runs the daemon in the foreground until SIGTERM/SIGINT; returns the exit status."""
    logs.setup(cfg)
    from resolver.daemon.server import make_resolver
    from resolver.dnssec.trust_anchor import TrustAnchorError
    try:
        checked = make_resolver(cfg)   # bad hints / DNSSEC options fail here, before binding
    except TrustAnchorError as e:
        raise ConfigError(f"--trust-anchor: {e}") from None
    except TypeError as e:
        raise ConfigError(f"--trust-anchor/--no-validate: not supported by this resolver ({e})")
    except (ValueError, OSError) as e:
        raise ConfigError(f"--root-hints: {e}") from None
    if checked.zones:          # said once here: each worker makes its own resolver again
        zones = checked.zones
        log.info("zones: %s", zones.describe())
        for name, local in zones.shadowed():
            log.warning("zone %s is answered by the local zone %s and never asked (give "
                        "local-zone \"%s nodefault\" to lift a default zone)", name, local,
                        local)
        for name in zones.needless_nodefaults():
            log.warning("local-zone %s nodefault: there is no such default local zone", name)
    cfg = fit_descriptors(cfg)
    cfg, overrides = choose_user(cfg, overrides)
    if cfg.user and os.geteuid() == 0:
        pw = pwd.getpwnam(cfg.user)
        logs.give_to(pw.pw_uid, pw.pw_gid)
    cfg = replace(cfg, control=prepare_control(cfg.control))
    tls = tls_services(cfg)
    notifier = Notifier()
    os.environ.pop("NOTIFY_SOCKET", None)      # only this process speaks to the manager
    if cfg.workers == 1:
        return _worker(cfg, overrides, cfg.control, cfg.metrics, notifier, tls)
    return _parent(cfg, overrides, notifier, tls)


def tls_services(cfg: Config) -> dict:
    """The TLS listeners' contexts, made here, before any worker is forked and while the
    key is still readable: the workers share their session ticket keys."""
    if not (cfg.tls_listen or cfg.https_listen):
        return {}
    import ssl
    from resolver.daemon.tls_listener import service_contexts
    try:
        return service_contexts(cfg)
    except (OSError, ssl.SSLError) as e:
        raise config_mod.unloadable_pair(cfg, e) from None


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
        sources = ([cfg.trust_anchor] if cfg.trust_anchor else []) + \
            [f"{f} (RFC 5011)" for f in cfg.auto_trust_anchor_file]
        dnssec = f"DNSSEC validation on (trust anchor {', '.join(sources) or 'shipped root key'})"
    else:
        why = "--no-validate" if cfg.validate is False else "no trust anchor for these root hints"
        dnssec = f"DNSSEC validation OFF ({why})"
    hints = cfg.root_hints or "the real root servers"
    return (f"corenet-resolver {__version__} on {where}; resolving from {hints}; {dnssec}; "
            f"cache {cfg.cache_size // (1024 * 1024)} MiB; workers {cfg.workers}; "
            f"allow {', '.join(map(str, cfg.allow)) or 'nobody'}")


#: The user a root daemon becomes when none is configured, and the fallback.
DEFAULT_USER = "corenet-resolver"
FALLBACK_USER = "nobody"


def _reachable_by(pw, path: str) -> bool:
    """Whether ``pw``'s user may enter every directory down to ``path`` and read it."""
    import stat
    parts = os.path.realpath(path).split(os.sep)
    for i in range(1, len(parts) + 1):
        d = os.sep + os.path.join(*parts[1:i]) if i > 1 else os.sep
        try:
            st = os.stat(d)
        except OSError:
            return False
        if st.st_uid == pw.pw_uid:
            need = stat.S_IXUSR | stat.S_IRUSR
        elif st.st_gid == pw.pw_gid:
            need = stat.S_IXGRP | stat.S_IRGRP
        else:
            need = stat.S_IXOTH | stat.S_IROTH
        if st.st_mode & need != need:
            return False
    return True


def unreadable_code(pw) -> list[str]:
    """The directories of the installed code (the resolver and dnspython, both imported
    lazily) that ``pw``'s user could not read."""
    import dns
    import resolver
    code = [os.path.dirname(resolver.__file__), os.path.dirname(dns.__file__)]
    return [c for c in code if not _reachable_by(pw, c)]


def choose_user(cfg: Config, overrides: dict[str, Any] | None):
    """The user to run as: the configured one, or, started as root with none configured,
    :data:`DEFAULT_USER` (else :data:`FALLBACK_USER`) if it can read the installed code.
    Returns the config and overrides to run with (a reload keeps the choice)."""
    if cfg.user is not None or os.geteuid() != 0:
        return cfg, overrides
    for name in (DEFAULT_USER, FALLBACK_USER):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        blocked = unreadable_code(pw)
        if blocked:
            log.warning("running as root: user %s could not read %s (install the package "
                        "where other users can read it, or set user = \"\" to silence this)",
                        name, blocked[0])
            user = ""
        else:
            user = name
        break
    else:
        log.warning("running as root: no user %s or %s to run as (set user)",
                    DEFAULT_USER, FALLBACK_USER)
        user = ""
    return replace(cfg, user=user), dict(overrides or {}, user=user)


def drop_privileges(user: str | None) -> None:
    """Becomes ``user`` (its uid and primary group, no supplementary groups), for good: a
    root process that changes all its uids loses every capability. Nothing to do without
    a user, or when already running as that user; a non-root process cannot switch."""
    if not user:
        return
    pw = pwd.getpwnam(user)
    if os.getuid() == pw.pw_uid and os.geteuid() == pw.pw_uid:
        return
    if os.geteuid() != 0:
        raise PermissionError(f"only root can switch to user {user!r}")
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


def _reload(cfg: Config, overrides) -> Config:
    if cfg.config_file is None:
        return cfg
    return config_mod.build(cfg.config_file, overrides)


def _worker(cfg: Config, overrides, control_path: str | None, metrics_addr,
            notifier: Notifier | None = None, tls: dict | None = None,
            index: int | None = None) -> int:
    """Serves until stopped; ``index``: which worker of several (None: the only one)."""
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_serve(cfg, overrides, control_path, metrics_addr,
                                              notifier, tls, index))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# Young objects the collector lets pile up before it looks (Python's default is 700). A burst of
# misses keeps thousands of short-lived objects alive at once; at 700 the collector would keep
# promoting them and then walking them again in the older generations (6% of a busy daemon's
# CPU in perf). Cycles are still collected, only in larger, rarer batches.
GC_YOUNG_THRESHOLD = 20_000


def _settle_gc() -> None:
    """Once started: what exists now (modules, config, root hints) lives as long as the
    process, so it is moved out of the collector's sight (``gc.freeze``), the collector
    runs less often (see GC_YOUNG_THRESHOLD), and its passes are timed (``stats``' "gc")."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    watch_gc()




def merge_status(parts: list[dict], started_at: float, workers: int) -> dict:
    """The status of a daemon with several workers: the parent's uptime and id, the cache
    figures summed (each worker has its own cache)."""
    from corenet import __version__

    return {"version": __version__, "pid": os.getpid(), "uptime": time.time() - started_at,
            "workers": workers, "workers_answering": len(parts),
            "listen": parts[0]["listen"] if parts else [],
            "dnssec": all(p["dnssec"] for p in parts),
            "cache_bytes": sum(p["cache_bytes"] for p in parts),
            "cache_size": sum(p["cache_size"] for p in parts),
            "inflight": sum(p["inflight"] for p in parts),
            "log_queries": any(p["log_queries"] for p in parts),
            # the workers share the state files: any one's view is theirs
            "auto_trust_anchors": parts[0].get("auto_trust_anchors", []) if parts else []}


async def _serve(cfg: Config, overrides, control_path, metrics_addr,
                 notifier: Notifier | None = None, tls: dict | None = None,
                 index: int | None = None) -> int:
    from resolver.daemon.server import Server

    loop = asyncio.get_running_loop()
    server = Server(cfg, tls_services=tls)
    try:
        await server.start()
    except OSError as e:
        log.error("cannot listen: %s", e.strerror or e)
        await server.stop(0)
        return 1
    stop = asyncio.Event()

    base = {"cfg": server.cfg}      # the config as read: a reload starts from it again

    def do_reload() -> dict:
        if notifier is not None:
            notifier.reloading()
        try:
            new = fit_descriptors(_reload(base["cfg"], overrides))
        except ConfigError as e:
            log.error("reload failed, keeping the old config: %s", e)
            if notifier is not None:
                notifier.ready(f"reload failed, old config kept: {e}")
            return {"ok": False, "error": str(e)}
        base["cfg"] = new
        restart = server.apply(replace(new, control=server.cfg.control))
        if restart:
            log.warning("reload: %s change only at restart", ", ".join(restart))
        log.info("config reloaded (cache kept)")
        if notifier is not None:
            notifier.ready(banner(server))
        return {"ok": True, "restart_needed": restart}

    control = WorkerControl(server, do_reload, lambda: loop.call_later(0.05, stop.set))

    async def handle(req: dict) -> dict:
        return await operations.run(operations.WORKER, control, req)

    ctl = met = None
    try:
        tcp = cfg if cfg.control_enable and control_path == cfg.control else None
        if control_path or tcp is not None:
            ctl = ControlServer(control_path, handle, cfg.control_mode,
                                cfg.limits.max_control_request, tcp)
            await ctl.start()
        if metrics_addr:
            met = MetricsServer(metrics_addr, server.stats)
            await met.start()
    except OSError as e:
        log.error("cannot start control/metrics: %s", e)
        for x in (ctl, met):
            if x is not None:
                await x.close()
        await server.stop(0)
        return 1
    pidfile = cfg.pidfile if notifier is not None else None     # not a worker's
    try:
        if cfg.user and ctl is not None and control_path and control_path != cfg.control:
            # A worker's private socket: its supervisor, as that user too, must reach it.
            pw = pwd.getpwnam(cfg.user)
            os.chown(control_path, pw.pw_uid, pw.pw_gid)
        elif ctl is not None and control_path:
            give_group(control_path, cfg.user)
        if pidfile:
            write_pidfile(pidfile)
        drop_privileges(cfg.user)
        why = None
    except OSError as e:
        why = f"cannot write the pidfile or run as user {cfg.user!r}: {e}"
    # RFC 5011 probes rewrite their state files: as the user the daemon now runs as
    why = why or server.start_trust_probes()
    if why:
        log.error("%s", why)
        for x in (ctl, met):
            if x is not None:
                await x.close()
        await server.stop(0)
        if pidfile:
            remove_pidfile(pidfile)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, do_reload)
    _settle_gc()
    # One banner and one "ready" per daemon: with several workers the first one's banner,
    # the supervisor's "ready: N workers"; the others say theirs at verbosity 2.
    log.log(logging.INFO if not index else logs.DETAIL, "%s", banner(server))
    log.log(logging.INFO if index is None else logs.DETAIL, "ready")
    if notifier is not None:
        notifier.ready(banner(server))
    await stop.wait()
    log.info("stopping")
    if notifier is not None:
        notifier.stopping()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.remove_signal_handler(sig)
    for x in (ctl, met):
        if x is not None:
            await x.close()
    await server.stop()
    if pidfile:
        remove_pidfile(pidfile)
    log.info("stopped")
    return 0


def _parent(cfg: Config, overrides, notifier: Notifier, tls: dict) -> int:
    private = tempfile.mkdtemp(prefix="corenet-resolver-")
    os.chmod(private, 0o700)
    if cfg.user:                  # the workers' control sockets, after everyone drops to it
        pw = pwd.getpwnam(cfg.user)
        os.chown(private, pw.pw_uid, pw.pw_gid)
    paths = [os.path.join(private, f"w{i}.sock") for i in range(cfg.workers)]
    children: dict[int, int] = {}
    for i, path in enumerate(paths):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _worker(cfg, overrides, path, None, None, tls, i)
            except BaseException:
                log.exception("worker %d crashed", i)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = i
    log.info("started %d workers: %s", cfg.workers, sorted(children))
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_supervise(cfg, overrides, children, paths, notifier))
    finally:
        loop.close()
        shutil.rmtree(private, ignore_errors=True)


#: Seconds the parent waits for every worker to answer before it says it is ready.
WORKERS_READY_TIMEOUT = 60.0


async def _supervise(cfg: Config, overrides, children: dict[int, int], paths: list[str],
                     notifier: Notifier) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    state = {"cfg": cfg, "status": 0}
    started_at = time.time()

    async def ask_all(req: dict, quiet: bool = False) -> tuple[list[dict], list[str]]:
        """Every worker's answer, and the errors of those that failed (by worker)."""
        out, errors = [], []
        # a cache's dump or load moves more than the other commands
        big = req["cmd"] in operations.BULK
        for i, p in enumerate(paths):
            try:
                out.append(await arequest(p, req, 25.0 if big else 5.0,
                                          cfg.limits.max_control_request))
            except ControlError as e:
                errors.append(f"worker {i}: {e}")
                if not quiet:
                    log.warning("worker %d: %s failed: %s", i, req["cmd"], e)
        return out, errors

    async def gather(req: dict) -> list[dict]:
        return (await ask_all(req))[0]

    async def stats() -> dict:
        parts = [a["stats"] for a in await gather({"cmd": "stats"})]
        out = merge(parts)
        if parts:
            out["hit_rates"] = hit_rates(out)      # of the sums, not a sum of rates
            out["per_worker"] = [_worker_figures(p) for p in parts]
        return out

    async def reload() -> dict:
        notifier.reloading()
        try:
            state["cfg"] = _reload(state["cfg"], overrides)
            logs.reload(state["cfg"])
        except ConfigError as e:
            log.error("reload failed, keeping the old config: %s", e)
            notifier.ready(f"reload failed, old config kept: {e}")
            return {"ok": False, "error": str(e)}
        answers, errors = await ask_all({"cmd": "reload"})
        if errors:
            log.error("reload failed in %d of %d workers: %s", len(errors), len(paths),
                      "; ".join(errors))
            notifier.ready(f"reload failed in {len(errors)} workers")
            return {"ok": False, "error": "; ".join(errors), "workers": len(answers)}
        restart = sorted({n for a in answers for n in a.get("restart_needed", [])})
        log.info("config reloaded in %d workers (caches kept)", len(answers))
        notifier.ready(f"reloaded; {len(answers)} workers")
        return {"ok": True, "workers": len(answers), "restart_needed": restart}

    async def stats_command(req: dict) -> dict:
        merged = await stats()
        if not (req.get("since") or req.get("reset")):
            return {"ok": True, "stats": merged}
        shown = since(merged, state.get("stats_base"))
        if req.get("reset"):
            state["stats_base"] = merged
        return {"ok": True, "stats": shown}

    async def status_command(req: dict) -> dict:
        parts = [a["status"] for a in await gather({"cmd": "status"})]
        return {"ok": True, "status": merge_status(parts, started_at, len(paths))}

    async def stop_command(req: dict) -> dict:
        loop.call_later(0.05, stop.set)
        return {"ok": True, "text": "ok"}

    #: the commands this process answers itself (the others are asked of every worker)
    own = {"stats": stats_command, "stats_noreset": lambda req: stats_command(
               {**req, "since": True, "reset": False}),
           "status": status_command, "reload": lambda req: reload(), "stop": stop_command}

    async def handle(req: dict) -> dict:
        cmd = req["cmd"]
        if cmd in own:
            return await own[cmd](req)
        if cmd in operations.HERE_TOO:           # the supervisor logs too
            answer = await operations.run(operations.WORKER, None, req)
            if not answer.get("ok"):
                return answer
        if cmd not in operations.WORKER:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        answers, errors = await ask_all(req)
        return operations.combine(cmd, answers, errors)

    # A worker is ready once it answers as the user it runs as for good: the parent drops
    # root after that, and then must still be able to signal every worker.
    uid = pwd.getpwnam(cfg.user).pw_uid if cfg.user else None

    async def workers_ready() -> bool:
        deadline = time.monotonic() + WORKERS_READY_TIMEOUT
        while time.monotonic() < deadline and len(children) == len(paths):
            if stop.is_set():
                return False
            answers, _ = await ask_all({"cmd": "status"}, quiet=True)
            if len(answers) == len(paths) and (
                    uid is None or all(a["status"].get("uid") == uid for a in answers)):
                return True
            for pid in list(children):
                try:
                    done = os.waitpid(pid, os.WNOHANG)[0]
                except ChildProcessError:
                    done = pid
                if done:
                    log.error("worker %d (pid %d) exited before it served",
                              children.pop(pid), pid)
                    return False
            await asyncio.sleep(0.1)
        log.error("the workers did not all start within %.0fs", WORKERS_READY_TIMEOUT)
        return False

    def on_hup() -> None:
        loop.create_task(handle({"cmd": "reload"}))

    # Before anything is awaited: a SIGTERM while the workers start stops them all.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)

    ctl = met = None
    try:
        if cfg.control or cfg.control_enable:
            ctl = ControlServer(cfg.control, handle, cfg.control_mode,
                                cfg.limits.max_control_request,
                                cfg if cfg.control_enable else None)
            await ctl.start()
        if cfg.metrics:
            met = MetricsServer(cfg.metrics, stats)
            await met.start()
    except OSError as e:
        log.error("cannot start control/metrics: %s", e)
        state["status"] = 1
        stop.set()
    ready = not stop.is_set() and await workers_ready()
    if not ready and not stop.is_set():
        # A worker failed to start (a SIGTERM meanwhile is a stop like any other: status 0).
        state["status"] = 1
        stop.set()
    try:
        if ready and cfg.pidfile:
            write_pidfile(cfg.pidfile)
        if ctl is not None and cfg.control:
            give_group(cfg.control, cfg.user)
        drop_privileges(cfg.user)
    except OSError as e:
        log.error("cannot write the pidfile or run as user %r: %s", cfg.user, e)
        state["status"] = 1
        stop.set()
    if not stop.is_set():
        log.info("ready: %d workers", len(paths))
        notifier.ready(f"serving on {', '.join(f'{h}:{p}' for h, p in cfg.listen)}; "
                       f"{len(paths)} workers")

    async def reap() -> None:
        while not stop.is_set():
            for pid in list(children):
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done, status = pid, 0
                if done:
                    log.error("worker %d (pid %d) exited (status %d): stopping",
                              children.pop(pid), pid, status)
                    state["status"] = 1
                    stop.set()
            await asyncio.sleep(0.2)

    reaper = loop.create_task(reap())
    await stop.wait()
    notifier.stopping()
    reaper.cancel()
    for x in (ctl, met):
        if x is not None:
            await x.close()
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError) as e:
            log.warning("cannot stop worker pid %d: %s", pid, e)
    deadline = time.monotonic() + cfg.shutdown_grace + 3
    while children and time.monotonic() < deadline:
        for pid in list(children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                children.pop(pid)
        await asyncio.sleep(0.05)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, PermissionError, ChildProcessError) as e:
            log.warning("cannot kill worker pid %d: %s", pid, e)
    if cfg.pidfile:
        remove_pidfile(cfg.pidfile)
    return state["status"]


def _worker_figures(stats: dict) -> dict:
    """One worker's cache figures, for the parent's ``per_worker`` list."""
    e, sc = stats["engine"], stats.get("shared_cache") or {}
    return {"client_queries": e["client_queries"], "cache_hits": e["cache_hits"],
            "shared_lookups": sc.get("lookups", 0), "shared_hits": sc.get("hits", 0),
            "upstream_queries": e["upstream_queries"], "hit_rates": stats["hit_rates"]}
