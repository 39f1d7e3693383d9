"""The daemon's log: where its lines go (standard error, a file, or syslog), how much it says
(Unbound's ``verbosity``) and how each line is stamped (``log-time-ascii``,
``log-time-iso``).

One line per event, in Unbound's shape (``IDENT[PID:N] LEVEL: message``; N the worker's
number, as Unbound's thread number; IDENT ``log-identity``, else ``corenet-resolver``)::

    [1764082514] corenet-resolver[4242:0] info: ready
    Nov 25 14:55:14 corenet-resolver[4242:0] info: ready                (log-time-ascii)
    2025-11-25T14:55:14.042+01:00 corenet-resolver[4242:0] info: ready  (and log-time-iso)
    <6>corenet-resolver[4242:0] info: ready            (standard error is the journal's stream)
    corenet-resolver: [4242:0] info: ready                              (syslog, as Unbound's)

The level is Unbound's word for it: ``error``, ``warning``, ``info`` (verbosity 1 and 2),
``debug`` (3 and up, whose lines also name the logger that wrote them), ``fatal error``.

Under systemd, standard error is the journal's stream (``$JOURNAL_STREAM``): each line then
starts with its priority (``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>`` debug) so that
``journalctl -p err`` finds the errors, and carries no time of its own (the journal's).

Verbosity is Unbound's scale, each level a threshold of Python's logging:

    0  errors (and warnings: Unbound prints those at every verbosity)   WARNING
    1  operational information                                           INFO
    2  detailed operational information                                  DETAIL (15)
    3  query level information                                           DEBUG
    4  algorithm level information                                       ALGORITHM (5)
    5  client identification for cache misses                            CACHE_MISS (1)
       (``resolver.daemon.misses``: one line per miss with the client's address and port)

The per-query logs (``resolver.daemon.querylog``: log-queries, log-replies, log-servfail,
log-local-actions) are shown whatever the verbosity, as Unbound's are.

``reopen()`` reopens the log file in the process that calls it: after logrotate has renamed
the file away, the control command ``log_reopen`` makes every process (the supervisor and each
worker) write a new one; a reload does it too, as Unbound's does.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Callable

#: The program name each line carries, unless ``log-identity`` gives another.
IDENT = "corenet-resolver"
#: Unbound's verbosity 2, 4 and 5, between Python's levels.
DETAIL = 15
ALGORITHM = 5
CACHE_MISS = 1
#: The logging threshold of each verbosity, 0 to 5.
THRESHOLDS = (logging.WARNING, logging.INFO, DETAIL, logging.DEBUG, ALGORITHM, CACHE_MISS)
MAX_VERBOSITY = len(THRESHOLDS) - 1

#: The local syslog socket.
SYSLOG_SOCKET = "/dev/log"
#: An environment variable naming another syslog socket (a test's, a chroot's).
SYSLOG_ENV = "CORENET_RESOLVER_SYSLOG"

logging.addLevelName(DETAIL, "DETAIL")
logging.addLevelName(ALGORITHM, "ALGORITHM")
logging.addLevelName(CACHE_MISS, "CACHE_MISS")

log = logging.getLogger("resolver.daemon.logs")


#: sd-daemon(3)'s priority prefixes, by syslog priority
PRIORITY_PREFIX = {"error": "<3>", "warning": "<4>", "info": "<6>", "debug": "<7>"}


def level_word(level: int) -> str:
    """Unbound's word for a line at the logging level ``level`` (its verbosity 2 is
    ``info``, 3 and up ``debug``)."""
    if level >= logging.CRITICAL:
        return "fatal error"
    if level >= logging.ERROR:
        return "error"
    if level >= logging.WARNING:
        return "warning"
    return "info" if level >= DETAIL else "debug"


#: A record's attribute naming the word its line says for its level (``log-tag-queryreply``:
#: ``query``, ``reply``), given as ``extra={TAG: word}``
TAG = "unbound_tag"


class LineFormatter(logging.Formatter):
    """``[EPOCH] IDENT[PID:N] level: message`` (:func:`level_word`; a debug line's message
    led by its logger's name); with ``ascii_time`` the time as ``Mon DD HH:MM:SS``
    (Unbound's ``log-time-ascii``), with ``iso_time`` too as ISO 8601's local time to the
    millisecond with its offset, ``2025-11-25T14:55:14.042+01:00`` (``log-time-iso``, which
    Unbound also reads only beside ``log-time-ascii``); with ``stamp`` False no time and no
    IDENT (syslog stamps its lines itself and puts the identity first: ``Syslog``); with
    ``priority`` the line
    starts with its sd-daemon priority, ``<3>`` for an error to ``<7>`` for debug (the
    journal reads it, and stamps the line itself). Any traceback is folded into the same
    line. IDENT and N are this process's (:func:`set_identity`, :func:`set_number`)."""

    def __init__(self, ascii_time: bool = False, stamp: bool = True,
                 priority: bool = False, iso_time: bool = False) -> None:
        super().__init__()
        self.ascii_time, self.stamp, self.priority = ascii_time, stamp, priority
        self.iso_time = iso_time and ascii_time

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += " | " + self.formatException(record.exc_info)
        text = text.replace("\n", " | ")
        word = getattr(record, TAG, None) or level_word(record.levelno)
        if word == "debug":
            text = f"{record.name}: {text}"
        pid = f"[{record.process}:{_state.number:x}]"
        if self.priority:
            head = PRIORITY_PREFIX[syslog_priority(record.levelno)] + _state.ident + pid
        elif not self.stamp:
            head = pid
        elif self.iso_time:
            head = f"{iso_local_time(record.created)} {_state.ident}{pid}"
        elif self.ascii_time:
            head = time.strftime("%b %d %H:%M:%S", time.localtime(record.created)) + \
                f" {_state.ident}{pid}"
        else:
            head = f"[{int(record.created)}] {_state.ident}{pid}"
        return f"{head} {word}: {text}"


def iso_local_time(when: float) -> str:
    """``when`` as ISO 8601's local time to the millisecond, with the offset from UTC as
    ``+hh:mm`` (Unbound's ``log-time-iso``: ``2025-11-25T14:55:14.042+01:00``)."""
    t = time.localtime(when)
    offset = time.strftime("%z", t)
    if len(offset) == 5:
        offset = f"{offset[:3]}:{offset[3:]}"
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', t)}.{int(when * 1000) % 1000:03d}{offset}"


def syslog_priority(level: int) -> str:
    """The syslog priority of a line at the logging level ``level``, as Unbound gives its
    lines: verbosity 2 (DETAIL) is info, 3 and up debug."""
    if level >= logging.ERROR:
        return "error"
    if level >= logging.WARNING:
        return "warning"
    return "info" if level >= DETAIL else "debug"


class _State:
    ident = IDENT                               # log-identity, else IDENT
    number = 0                                  # this process's N in [PID:N]
    handler: logging.Handler | None = None      # the handler this module installed
    path: str | None = None                     # the log file, when there is one
    where: tuple = ()                           # (destination, ascii time) it was made for


_state = _State()


def journal_stream() -> bool:
    """Whether standard error is the systemd journal's stream: ``$JOURNAL_STREAM``
    (``DEVICE:INODE``) names the file standard error is (systemd.exec(5)), not one a shell
    redirected it to since."""
    try:
        dev, ino = (int(x) for x in os.environ["JOURNAL_STREAM"].split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (KeyError, ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def syslog_socket() -> str:
    """The syslog socket lines go to: ``$CORENET_RESOLVER_SYSLOG`` or ``/dev/log``."""
    return os.environ.get(SYSLOG_ENV) or SYSLOG_SOCKET


def threshold_of(cfg) -> int:
    """The logging threshold ``cfg`` asks for: Python's level named by ``log-level`` when
    it is set (WARNING is verbosity 0, INFO 1, DEBUG 3), else ``verbosity``'s."""
    if cfg.log_level:
        return logging.getLevelName(cfg.log_level)
    return THRESHOLDS[cfg.verbosity]


def set_verbosity(level: int) -> None:
    """Logs from now on what Unbound's verbosity ``level`` (0 to 5) shows."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_VERBOSITY:
        raise ValueError(f"verbosity must be 0 to {MAX_VERBOSITY}, got {level!r}")
    _set_threshold(THRESHOLDS[level])


#: called after each change of the threshold (on_threshold)
_threshold_listeners: list[Callable[[], None]] = []


def on_threshold(listener: Callable[[], None]) -> None:
    """Calls ``listener()`` now and after each change of the daemon's threshold (``setup``,
    ``reload``, ``set_verbosity``): for a path too hot to ask ``Logger.isEnabledFor`` (a
    Python call) each time, which keeps the answer instead."""
    _threshold_listeners.append(listener)
    listener()


def _set_threshold(level: int) -> None:
    logging.getLogger().setLevel(level)
    for listener in _threshold_listeners:
        listener()


def verbosity() -> int:
    """The verbosity in force: the highest level whose lines the root logger passes."""
    threshold = logging.getLogger().level
    shown = [n for n, t in enumerate(THRESHOLDS) if t >= threshold]
    return max(shown) if shown else 0


def _file_handler(path: str) -> logging.Handler:
    return logging.FileHandler(path, mode="a", encoding="utf-8")


def _syslog_handler() -> logging.Handler:
    from logging.handlers import SysLogHandler      # (and pickle): only with use-syslog

    class Syslog(SysLogHandler):
        """Python's syslog handler, with Unbound's verbosity levels given priorities."""

        def mapPriority(self, levelName: str) -> str:
            level = logging.getLevelName(levelName)
            return syslog_priority(level if isinstance(level, int) else logging.INFO)

    where = syslog_socket()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        probe.connect(where)       # Python's handler would only fail at its first line
    handler = Syslog(address=where, facility=SysLogHandler.LOG_DAEMON,
                     socktype=socket.SOCK_DGRAM)
    handler.ident = f"{_state.ident}: "     # as openlog(3)'s ident leads Unbound's lines
    return handler


def set_identity(name: str | None) -> None:
    """The name the lines carry (``log-identity``; None or "": ``corenet-resolver``)."""
    _state.ident = name or IDENT


def set_number(n: int) -> None:
    """This process's number in its lines' ``[PID:N]`` (Unbound's thread number): a
    worker's index; 0 for the supervisor or a daemon of one process."""
    _state.number = n


def setup(cfg) -> None:
    """Sends the daemon's log where ``cfg`` says (``use-syslog``, else ``logfile``, else
    standard error), stamped as it says, at its verbosity; called at start by ``serve`` and
    again on reload (a changed destination replaces the old one). A log file that cannot
    be opened, or a syslog socket that cannot be reached, leaves the lines on standard
    error and says why there."""
    stamps, syslog = (cfg.log_time_ascii, cfg.log_time_iso), cfg.use_syslog
    path = None if syslog else (cfg.logfile or None)
    where = ("syslog", syslog_socket()) if syslog else ("file", path) if path else ("stderr",)
    root = logging.getLogger()
    problem = None
    set_identity(cfg.log_identity)
    if _state.handler is not None and _state.where[0][0] == "syslog":
        _state.handler.ident = f"{_state.ident}: "      # a reload's log-identity
    if _state.handler is None or _state.where != (where, stamps):
        handler: logging.Handler
        try:
            if syslog:
                handler = _syslog_handler()
            elif path:
                handler = _file_handler(path)
            else:
                handler = logging.StreamHandler(sys.stderr)
        except OSError as e:
            problem = (f"cannot log to {where[1]} ({e.strerror or e}); "
                       "logging to standard error")
            handler, path, where = logging.StreamHandler(sys.stderr), None, ("stderr",)
        journal = where[0] == "stderr" and journal_stream()
        handler.setFormatter(LineFormatter(stamps[0], stamp=where[0] != "syslog" and
                                           not journal, priority=journal,
                                           iso_time=stamps[1]))
        old = _state.handler
        if old is not None:                 # one destination: no line written twice
            root.removeHandler(old)
            old.close()
        root.addHandler(handler)
        _state.handler, _state.path, _state.where = handler, path, (where, stamps)
    _set_threshold(threshold_of(cfg))
    # written only when asked for (val-log-level), then whatever the verbosity, as Unbound's
    logging.getLogger("resolver.validator").setLevel(logging.INFO)
    if problem:
        log.error("%s", problem)


def give_to(uid: int, gid: int) -> None:
    """Makes the log file ``uid``'s (Unbound does the same before it drops root), so that
    the daemon can still reopen it as that user."""
    if _state.path is None:
        return
    try:
        os.chown(_state.path, uid, gid)
    except OSError as e:
        log.warning("cannot give the log file %s to uid %d: %s", _state.path, uid,
                    e.strerror or e)


def reopen() -> None:
    """Reopens the log file (if there is one), creating it if it was renamed away: lines
    from now on go to the file at that path. If it cannot be opened the old one is kept,
    and the error is logged there."""
    handler = _state.handler
    if _state.path is None or not isinstance(handler, logging.FileHandler):
        return
    try:
        stream = open(_state.path, "a", encoding="utf-8")
    except OSError as e:
        log.error("cannot reopen the log file %s: %s; still writing to the old one",
                  _state.path, e.strerror or e)
        return
    old = handler.setStream(stream)
    if old is not None:
        old.close()


def reload(cfg) -> None:
    """A reload's part: ``cfg``'s log settings applied and the log file reopened (as
    Unbound's reload does); in a process whose log :func:`setup` did not make (a test's), the
    threshold only."""
    if _state.handler is None:
        _set_threshold(threshold_of(cfg))
        return
    setup(cfg)
    reopen()


def close() -> None:
    """Stops writing where :func:`setup` said: its handler removed and closed."""
    handler = _state.handler
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()
    _state.handler, _state.path, _state.where = None, None, ()


def log_file() -> str | None:
    """The path of the log file lines go to, or None (standard error or syslog)."""
    return _state.path


__all__ = ["setup", "set_verbosity", "verbosity", "reopen", "reload", "close", "give_to", "log_file",
           "threshold_of", "syslog_socket", "LineFormatter", "THRESHOLDS", "DETAIL",
           "ALGORITHM", "CACHE_MISS", "SYSLOG_ENV", "SYSLOG_SOCKET"]


def descriptors() -> set[int]:
    """The descriptors the root logger's handlers write to (a process that closes what it
    inherited keeps these)."""
    out = set()
    for handler in logging.getLogger().handlers:
        for name in ("stream", "socket"):
            held = getattr(handler, name, None)
            try:
                out.add(held.fileno())
            except (AttributeError, OSError, ValueError):
                pass
    return out
