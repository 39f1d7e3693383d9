"""The supervisor of several workers.

With ``workers > 1`` the supervisor binds each worker's listening sockets (SO_REUSEPORT)
while it is still root, keeps them, and forks the workers; each has its own sockets and its
own cache. The supervisor serves the control socket and metrics, asking each worker over a
private control socket and summing their figures, and passes signals on.

A worker that dies is started again, after a back-off that grows while it keeps dying young
(:data:`RESTART_DELAY` doubling up to :data:`RESTART_DELAY_MAX`), with a log line saying how
it ended; the others keep serving and keep their caches. One that died young
:data:`MAX_YOUNG_DEATHS` times in a row (it cannot start: a file it needs is gone) is not
started again and its sockets are closed, so that its share of the queries goes to the
others instead of waiting on sockets no worker reads. The new worker takes over the same
sockets (the supervisor held them meanwhile), so the queries the kernel gave them while no
worker read them wait there to be answered, and a port below 1024 needs no privilege. Each
worker dies with the supervisor (``PR_SET_PDEATHSIG``): a supervisor killed with SIGKILL
leaves no worker holding the port.
A worker that cannot start at all stops the daemon before it says it is ready.
"""
from __future__ import annotations

import asyncio
import logging
import os
import pwd
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, replace

from resolver.daemon import connections, logs, operations, reloads
from resolver.daemon.commands import BY_NAME
from resolver.daemon.config import RESTART_SETTINGS, Config, ConfigError
from resolver.daemon.connection_limits import Table
from resolver.daemon.control import ControlError, ControlServer, arequest
from resolver.daemon.metrics import MetricsServer, hit_rates, merge, since
from resolver.daemon.service import Notifier, give_group, remove_pidfile, write_pidfile
from resolver.daemon.worker import (Worker, die_with_parent, drop_privileges, fit_descriptors,
                                    reread)

log = logging.getLogger("resolver.daemon.process")

#: Seconds the supervisor waits for every worker to answer before it says it is ready.
WORKERS_READY_TIMEOUT = 60.0
#: Seconds before a dead worker is started again; doubled for each death in a row of a worker
#: that lived less than :data:`STABLE_AFTER` seconds, up to :data:`RESTART_DELAY_MAX`.
RESTART_DELAY = 0.1
RESTART_DELAY_MAX = 30.0
STABLE_AFTER = 60.0
#: Deaths in a row, each before STABLE_AFTER, after which a worker is not started again.
MAX_YOUNG_DEATHS = 8
#: The signals blocked while a worker is forked: the child resets their handlers first.
FORK_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}


@dataclass
class Slot:
    """One worker as the supervisor sees it: its place, private socket and process."""
    index: int
    path: str
    pid: int | None = None
    started: float = 0.0          # time.monotonic() at its fork
    young_deaths: int = 0         # deaths in a row before STABLE_AFTER
    restarts: int = 0
    due: asyncio.TimerHandle | None = None      # its restart, while it waits
    retired: bool = False         # failed to start too often: not started again

    def delay(self) -> float:
        return min(RESTART_DELAY_MAX, RESTART_DELAY * 2 ** max(0, self.young_deaths - 1))


def ending(status: int) -> str:
    """How a process ended, from its wait status, in words."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


def release_inherited(keep: set[int]) -> None:
    """Lets go of every descriptor of this process but ``keep`` and the standard three (in a
    forked worker: the supervisor's sockets and loop). Each is made a copy of /dev/null
    rather than closed: the objects that held them still exist in the child, and a number
    closed now could be given to a socket of the worker that one of them would close later."""
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2 and fd != null and fd not in keep:
                try:
                    os.dup2(null, fd, inheritable=False)
                except OSError:
                    pass            # the listing's own descriptor, closed by now
    finally:
        os.close(null)


class Supervisor:
    """Runs ``cfg.workers`` workers of ``cfg`` and answers for them until stopped."""

    def __init__(self, cfg: Config, overrides, notifier: Notifier, tls: dict) -> None:
        self.cfg = cfg                      # as started: its restart-only settings hold
        self.current = cfg                  # as last read (a reload changes it)
        self.reloading = reloads.OneAtATime(self._reload)
        self.overrides, self.notifier, self.tls = overrides, notifier, tls
        self.pid = os.getpid()
        self.slots: list[Slot] = []
        #: each worker's listening sockets, bound once while still root (``bind_ahead``)
        self.sockets: list[dict] = []
        #: where the workers count ``tcp-connection-limit`` together, a row each
        self.connection_table: Table | None = None
        self.status = 0
        self.serving = False                # every worker answered once: deaths restart
        self.started_at = time.time()
        self.stats_base: dict | None = None
        self.stop: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # ---- the workers' processes -----------------------------------------------------------
    def run(self) -> int:
        """Forks the workers, answers until stopped; the exit status."""
        private = tempfile.mkdtemp(prefix="corenet-resolver-")
        os.chmod(private, 0o700)
        if self.cfg.user:          # the workers' control sockets, after everyone drops to it
            pw = pwd.getpwnam(self.cfg.user)
            os.chown(private, pw.pw_uid, pw.pw_gid)
        self.slots = [Slot(i, os.path.join(private, f"w{i}.sock"))
                      for i in range(self.cfg.workers)]
        self.sockets = connections.bind_ahead(self.cfg, len(self.slots))
        self.connection_table = Table(len(self.slots))
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(self.main())
        finally:
            loop.close()
            for held in self.sockets:
                for sock in held.values():
                    sock.close()
            shutil.rmtree(private, ignore_errors=True)

    def worker_config(self) -> Config:
        """The config a worker starts with: the last one read, with the settings that change
        only at a restart of the daemon as it started."""
        kept = {name: getattr(self.cfg, name) for name in (*RESTART_SETTINGS, "control")}
        return replace(self.current, **kept)

    def spawn(self, slot: Slot) -> None:
        """Forks ``slot``'s worker."""
        cfg = fit_descriptors(self.worker_config()) if slot.restarts else self.cfg
        slot.due = None
        self.connection_table.clear(slot.index)     # the connections its last worker held
        old = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._child(slot, cfg)          # never returns
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        slot.pid, slot.started = pid, time.monotonic()

    def _child(self, slot: Slot, cfg: Config) -> None:
        code = 1
        try:
            for sig in FORK_SIGNALS:            # the supervisor's handlers are not the worker's
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORK_SIGNALS)
            asyncio.events._set_running_loop(None)      # the supervisor's loop runs no more here
            die_with_parent(self.pid)
            logs.set_number(slot.index)
            mine = self.sockets[slot.index]
            # what a worker keeps of the supervisor's: where the log goes, its own sockets
            release_inherited(logs.descriptors() | {sock.fileno() for sock in mine.values()})
            connections.RESERVED.update(mine)
            code = Worker(cfg, self.overrides, slot.path, None, None, self.tls, slot.index,
                          supervisor=self.pid, connection_table=self.connection_table).run()
        except BaseException:
            log.exception("worker %d crashed", slot.index)
        finally:
            logging.shutdown()
            os._exit(code)

    def reap(self) -> None:
        """Collects the workers that ended (SIGCHLD's handler), and starts them again."""
        for slot in self.slots:
            if slot.pid is None:
                continue
            try:
                pid, status = os.waitpid(slot.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = slot.pid, 0
            if pid:
                self.ended(slot, status)

    def ended(self, slot: Slot, status: int) -> None:
        pid, lived = slot.pid, time.monotonic() - slot.started
        slot.pid = None
        if self.stop.is_set():
            return
        how = ending(status)
        if not self.serving:
            log.error("worker %d (pid %d) %s before it served", slot.index, pid, how)
            self.status = 1
            self.stop.set()
            return
        slot.young_deaths = slot.young_deaths + 1 if lived < STABLE_AFTER else 1
        log.error("worker %d (pid %d) %s after %.1fs", slot.index, pid, how, lived)
        self.again(slot)

    def again(self, slot: Slot) -> None:
        """Starts ``slot``'s worker again after its delay, or retires the slot once it has
        died young :data:`MAX_YOUNG_DEATHS` times in a row: its sockets are closed so that
        the kernel gives its share of the queries to the others rather than to sockets no
        worker reads."""
        others = sum(s.pid is not None for s in self.slots)
        if slot.young_deaths < MAX_YOUNG_DEATHS:
            log.error("worker %d: starting it again in %.1fs (the other %d serve meanwhile)",
                      slot.index, slot.delay(), others)
            slot.due = self.loop.call_later(slot.delay(), self.restart, slot)
            return
        slot.retired = True
        for sock in self.sockets[slot.index].values():
            sock.close()
        self.sockets[slot.index].clear()
        if not others and all(s.retired or s.pid is None for s in self.slots):
            log.error("worker %d died %d times in a row within a minute of its start, and "
                      "no worker serves: stopping", slot.index, slot.young_deaths)
            self.status = 1
            self.stop.set()
            return
        log.error("worker %d died %d times in a row within a minute of its start: not "
                  "started again, its sockets closed; the other %d serve its share (a "
                  "restart of the daemon brings it back)", slot.index, slot.young_deaths,
                  others)

    def restart(self, slot: Slot) -> None:
        if self.stop.is_set() or slot.pid is not None:
            return
        slot.restarts += 1
        try:
            self.spawn(slot)
        except Exception as e:          # no fork (EAGAIN, ENOMEM): tried again later
            slot.young_deaths += 1
            log.error("cannot start worker %d again: %s", slot.index, e)
            self.again(slot)
            return
        log.info("worker %d started again (pid %d, restart %d)", slot.index, slot.pid,
                 slot.restarts)

    async def workers_ready(self) -> bool:
        """Whether every worker answered, as the user it runs as for good, in time: the
        supervisor drops root after that, and then must still be able to signal every one."""
        uid = pwd.getpwnam(self.cfg.user).pw_uid if self.cfg.user else None
        deadline = time.monotonic() + WORKERS_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.stop.is_set():
                return False
            answers, _ = await self.ask_all({"cmd": "status"}, quiet=True)
            if len(answers) == len(self.slots) and (
                    uid is None or all(a["status"].get("uid") == uid for a in answers)):
                return True
            await asyncio.sleep(0.1)
        log.error("the workers did not all start within %.0fs", WORKERS_READY_TIMEOUT)
        return False

    async def end_workers(self) -> None:
        """SIGTERM to every worker, SIGKILL to those still there after the grace."""
        for slot in self.slots:
            if slot.due is not None:
                slot.due.cancel()
            if slot.pid is not None:
                try:
                    os.kill(slot.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError) as e:
                    log.warning("cannot stop worker pid %d: %s", slot.pid, e)
        deadline = time.monotonic() + self.cfg.shutdown_grace + 3
        while any(s.pid is not None for s in self.slots) and time.monotonic() < deadline:
            self.reap()
            await asyncio.sleep(0.05)
        for slot in self.slots:
            if slot.pid is None:
                continue
            try:
                os.kill(slot.pid, signal.SIGKILL)
                os.waitpid(slot.pid, 0)
            except (ProcessLookupError, PermissionError, ChildProcessError) as e:
                log.warning("cannot kill worker pid %d: %s", slot.pid, e)

    # ---- answering for them ---------------------------------------------------------------
    async def ask_all(self, req: dict, quiet: bool = False) -> tuple[list[dict], list[str]]:
        """Every running worker's answer, and the errors of those that failed (by worker)."""
        out, errors = [], []
        # a cache's dump or load moves more than the other commands
        wait = 25.0 if req["cmd"] in operations.BULK else 5.0
        for slot in self.slots:
            if slot.pid is None:
                errors.append(f"worker {slot.index}: " + (
                    "retired (it kept failing to start)" if slot.retired
                    else "not running (starting again)"))
                continue
            try:
                out.append(await arequest(slot.path, req, wait,
                                          self.cfg.limits.max_control_request))
            except ControlError as e:
                errors.append(f"worker {slot.index}: {e}")
                if not quiet:
                    log.warning("worker %d: %s failed: %s", slot.index, req["cmd"], e)
        return out, errors

    async def stats(self) -> dict:
        parts = [a["stats"] for a in (await self.ask_all({"cmd": "stats"}))[0]]
        out = merge(parts)
        if parts:
            out["hit_rates"] = hit_rates(out)      # of the sums, not a sum of rates
            out["per_worker"] = [worker_figures(p) for p in parts]
        return out

    async def reload(self, req: dict | None = None) -> dict:
        """SIGHUP's and the ``reload`` command's: one at a time, the last one wins."""
        return await self.reloading()

    async def fast_reload(self, req: dict) -> dict:
        """Unbound's ``fast_reload``: a reload, then with ``+d`` every worker's queries in
        flight dropped (``operations.fast_reload_options``)."""
        try:
            verbose, drop = operations.fast_reload_options(req)
        except operations.CommandError as e:
            return {"ok": False, "error": str(e)}
        answer = await self.reload(req)
        if drop and answer.get("ok"):
            await self.ask_all({"cmd": "flush_requestlist", "args": []})
        return {**answer, "verbose": verbose}

    async def _reload(self) -> dict:
        notifier = self.notifier
        notifier.reloading()
        current, overrides = self.current, self.overrides
        try:
            self.current = await reloads.off_loop(lambda: reread(current, overrides))
            logs.reload(self.current)
        except ConfigError as e:
            log.error("reload failed, keeping the old config: %s", e)
            notifier.ready(f"reload failed, old config kept: {e}")
            return {"ok": False, "error": str(e)}
        answers, errors = await self.ask_all({"cmd": "reload"})
        if errors:
            log.error("reload failed in %d of %d workers: %s", len(errors), len(self.slots),
                      "; ".join(errors))
            notifier.ready(f"reload failed in {len(errors)} workers")
            return {"ok": False, "error": "; ".join(errors), "workers": len(answers)}
        restart = sorted({n for a in answers for n in a.get("restart_needed", [])})
        log.info("config reloaded in %d workers (caches kept)", len(answers))
        notifier.ready(f"reloaded; {len(answers)} workers")
        return {"ok": True, "workers": len(answers), "restart_needed": restart}

    async def stats_command(self, req: dict) -> dict:
        merged = await self.stats()
        if not (req.get("since") or req.get("reset")):
            return {"ok": True, "stats": merged}
        shown = since(merged, self.stats_base)
        if req.get("reset"):
            self.stats_base = merged
        return {"ok": True, "stats": shown}

    async def flush_stats_command(self, req: dict) -> dict:
        self.stats_base = await self.stats()
        return {"ok": True, "text": "ok"}

    async def status_command(self, req: dict) -> dict:
        parts = [a["status"] for a in (await self.ask_all({"cmd": "status"}))[0]]
        status = merge_status(parts, self.started_at, len(self.slots))
        status["worker_restarts"] = sum(s.restarts for s in self.slots)
        return {"ok": True, "status": status}

    async def stop_command(self, req: dict) -> dict:
        self.loop.call_later(0.05, self.stop.set)
        return {"ok": True, "text": "ok"}

    def own_commands(self) -> dict:
        """The handler of each command of scope "supervisor" (answered here)."""
        return {"stats": self.stats_command,
                "stats_noreset": lambda r: self.stats_command({**r, "since": True,
                                                               "reset": False}),
                "flush_stats": self.flush_stats_command, "status": self.status_command,
                "reload": self.reload, "reload_keep_cache": self.reload,
                "fast_reload": self.fast_reload, "stop": self.stop_command}

    async def run_command(self, req: dict) -> dict:
        cmd = req["cmd"]
        command = BY_NAME.get(cmd)
        if command is not None and command.scope == "supervisor":
            return await self.own_commands()[cmd](req)
        if cmd in operations.HERE_TOO:           # the supervisor logs too
            answer = await operations.run(operations.WORKER, None, req)
            if not answer.get("ok"):
                return answer
        if cmd not in operations.WORKER:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        answers, errors = await self.ask_all(req)
        return operations.combine(cmd, answers, errors)

    # ---- its life -------------------------------------------------------------------------
    async def main(self) -> int:
        self.loop = loop = asyncio.get_running_loop()
        self.stop = stop = asyncio.Event()
        # Before anything is awaited: a SIGTERM while the workers start stops them all.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        loop.add_signal_handler(signal.SIGCHLD, self.reap)
        for slot in self.slots:
            self.spawn(slot)
        log.info("started %d workers: %s", len(self.slots), [s.pid for s in self.slots])
        self.reap()                 # any that ended before the handler was there
        ctl = met = None
        cfg = self.cfg
        try:
            if cfg.control or cfg.control_enable:
                ctl = ControlServer(cfg.control, self.run_command, cfg.control_mode,
                                    cfg.limits, cfg if cfg.control_enable else None)
                await ctl.start()
            if cfg.metrics:
                met = MetricsServer(cfg.metrics, self.stats, cfg.limits)
                await met.start()
        except OSError as e:
            log.error("cannot start control/metrics: %s", e)
            self.status = 1
            stop.set()
        ready = not stop.is_set() and await self.workers_ready()
        if not ready and not stop.is_set():
            # A worker failed to start (a SIGTERM meanwhile is a stop like any other: status 0).
            self.status = 1
            stop.set()
        try:
            if ready and cfg.pidfile:
                write_pidfile(cfg.pidfile, cfg.user)
            if ctl is not None and cfg.control:
                give_group(cfg.control, cfg.user)
            drop_privileges(cfg.user)
        except OSError as e:
            log.error("cannot write the pidfile or run as user %r: %s", cfg.user, e)
            self.status = 1
            stop.set()
        if not stop.is_set():
            self.serving = True
            log.info("ready: %d workers", len(self.slots))
            self.notifier.ready(f"serving on {', '.join(f'{h}:{p}' for h, p in cfg.listen)}; "
                                f"{len(self.slots)} workers")
        await stop.wait()
        self.notifier.stopping()
        for x in (ctl, met):
            if x is not None:
                await x.close()
        await self.end_workers()
        loop.remove_signal_handler(signal.SIGCHLD)
        if cfg.pidfile:
            remove_pidfile(cfg.pidfile)
        return self.status


def merge_status(parts: list[dict], started_at: float, workers: int) -> dict:
    """The status of a daemon with several workers: the supervisor's uptime and id, the cache
    figures summed (each worker has its own cache)."""
    from corenet import __version__

    return {"version": __version__, "pid": os.getpid(), "uptime": time.time() - started_at,
            "verbosity": parts[0].get("verbosity", 0) if parts else 0,
            "control": parts[0].get("control", []) if parts else [],
            "workers": workers, "workers_answering": len(parts),
            "listen": parts[0]["listen"] if parts else [],
            "dnssec": all(p["dnssec"] for p in parts),
            "cache_bytes": sum(p["cache_bytes"] for p in parts),
            "cache_size": sum(p["cache_size"] for p in parts),
            "inflight": sum(p["inflight"] for p in parts),
            "log_queries": any(p["log_queries"] for p in parts),
            # the workers share the state files: any one's view is theirs
            "auto_trust_anchors": parts[0].get("auto_trust_anchors", []) if parts else []}


def worker_figures(stats: dict) -> dict:
    """One worker's cache figures, for the supervisor's ``per_worker`` list."""
    from resolver.daemon.unbound_stats import thread_figures

    e, sc = stats["engine"], stats.get("shared_cache") or {}
    return {"client_queries": e["client_queries"], "cache_hits": e["cache_hits"],
            "shared_lookups": sc.get("lookups", 0), "shared_hits": sc.get("hits", 0),
            "upstream_queries": e["upstream_queries"], "hit_rates": stats["hit_rates"],
            "thread": thread_figures(stats)}
