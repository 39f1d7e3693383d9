"""What a service manager sees of the daemon: ``sd_notify`` states, the pidfile and where the
control socket lives.

``sd_notify``: systemd passes ``NOTIFY_SOCKET`` (a Unix datagram socket path, or ``@name``
for the abstract namespace) to a ``Type=notify`` service, which sends newline-separated
``KEY=VALUE`` lines there: ``READY=1`` once it serves, ``RELOADING=1`` with
``MONOTONIC_USEC=`` when a reload starts and ``READY=1`` when it ends, ``STOPPING=1`` when it
stops, ``STATUS=`` free text for ``systemctl status``. Without ``NOTIFY_SOCKET`` nothing is
sent; a send that fails is logged once and never stops the daemon.
"""
from __future__ import annotations

import logging
import os
import socket
import stat
import time

log = logging.getLogger("resolver.daemon.service")

#: The control socket's place when the config does not say (root, or the systemd unit's
#: RuntimeDirectory).
SYSTEM_CONTROL = "/run/corenet-resolver/control"


class Notifier:
    """Sends states to the service manager named by ``NOTIFY_SOCKET`` (no-op without it)."""

    def __init__(self, address: str | None = None) -> None:
        if address is None:
            address = os.environ.get("NOTIFY_SOCKET") or None
        self.address = address
        self.failed = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **states: object) -> bool:
        """Sends ``KEY=VALUE`` lines (keys upper-cased); True if the datagram went out."""
        if not self.address:
            return False
        text = "\n".join(f"{k.upper()}={v}" for k, v in states.items())
        if "\n" in "".join(str(v) for v in states.values()):
            raise ValueError("sd_notify values are single lines")
        target = self.address
        if target.startswith("@"):                  # the abstract namespace
            target = "\0" + target[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(target)
                s.sendall(text.encode())
        except OSError as e:
            if not self.failed:
                log.warning("cannot notify the service manager at %s: %s", self.address, e)
                self.failed = True
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(ready=1, status=status)

    def reloading(self) -> bool:
        return self.send(reloading=1,
                         monotonic_usec=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> bool:
        return self.send(stopping=1, status="stopping")


# ---- pidfile ---------------------------------------------------------------------------------
def write_pidfile(path: str, user: str | None = None) -> None:
    """Writes this process's id to ``path`` atomically (a temporary file renamed over it).
    Written as root for a daemon that then runs as ``user``, the file is given to that user,
    so that the daemon can still empty it at exit when the directory is not its own."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        if user and os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam(user)
            os.fchown(fd, pw.pw_uid, pw.pw_gid)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def remove_pidfile(path: str) -> None:
    """Removes ``path`` if it still holds this process's id (a newer daemon's is kept). A
    daemon that dropped root may not remove a file from a directory that is not its own:
    the file is emptied first, so that it names no process either way."""
    try:
        with open(path, "r+") as f:
            if f.read().strip() != str(os.getpid()):
                return
            f.truncate(0)
    except FileNotFoundError:
        return
    except OSError as e:
        log.warning("cannot remove pidfile %s: %s", path, e.strerror or e)
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.info("pidfile %s emptied; it cannot be removed as this user: %s", path,
                 e.strerror or e)


# ---- the control socket's place --------------------------------------------------------------
def user_control() -> str:
    """Where a daemon that is not root puts its control socket by default."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "corenet-resolver", "control")
    return f"/tmp/corenet-resolver-{os.getuid()}/control"


def control_candidates() -> list[str]:
    """Where the commands look for a daemon started with the default control path."""
    env = os.environ.get("CORENET_RESOLVER_CONTROL")
    if env:
        return [env]
    return [SYSTEM_CONTROL, user_control()]


def find_control() -> str:
    """The first candidate with a socket; the system path when none has one (the error then
    names it)."""
    for path in control_candidates():
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return path
        except OSError:
            continue
    return control_candidates()[0]


def give_group(path: str, user: str | None) -> None:
    """Gives the control socket at ``path`` the primary group of ``user`` (the daemon's
    user once it drops root), so that group's members may use it as root may."""
    if not user or os.geteuid() != 0:
        return
    import pwd

    os.chown(path, -1, pwd.getpwnam(user).pw_gid)


def _private_dir(path: str, mode: int, owned: bool = True) -> bool:
    """Makes directory ``path`` (mode ``mode``) or checks an existing one is usable: ours
    (``owned``) or writable by us, and writable by nobody else; False if neither."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_mode & 0o002:
        return False
    if owned:
        return st.st_uid == os.geteuid() and not st.st_mode & 0o020
    return os.access(path, os.W_OK | os.X_OK)


def prepare_control(path: str | None) -> str | None:
    """The control socket path to bind for the configured ``path``: itself, except for the
    default one, whose directory is made here (0755, as systemd's RuntimeDirectory) or, when
    that is not possible (not root), replaced by :func:`user_control`."""
    if path != SYSTEM_CONTROL:
        return path
    env = os.environ.get("CORENET_RESOLVER_CONTROL")
    if env:
        return env
    if _private_dir(os.path.dirname(SYSTEM_CONTROL), 0o755, owned=False):
        return SYSTEM_CONTROL
    alt = user_control()
    parent = os.path.dirname(alt)
    if not os.path.isdir(os.path.dirname(parent)) or not _private_dir(parent, 0o700):
        log.warning("no control socket: cannot use %s or %s", SYSTEM_CONTROL, alt)
        return None
    log.info("control socket at %s (cannot create %s)", alt, os.path.dirname(SYSTEM_CONTROL))
    return alt


# ---- the systemd unit ------------------------------------------------------------------------
#: the path the shipped unit names; ``unit_text`` puts the installed one in its place
UNIT_EXECUTABLE = "/usr/local/bin/corenet-resolver"


def installed_executable() -> str:
    """The command that runs this installation's corenet-resolver: the console script beside
    this interpreter (a virtual environment's or the system's), else the one on PATH, else
    the interpreter running the CLI module."""
    import shutil
    import sys

    beside = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "corenet-resolver")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("corenet-resolver")
    if found:
        return os.path.abspath(found)
    return f"{os.path.abspath(sys.executable)} -m resolver.daemon.cli"


def unit_text(executable: str | None = None) -> str:
    """The systemd unit shipped in ``resolver/data``, running ``executable`` (by default
    this installation's corenet-resolver)."""
    from importlib.resources import files

    text = files("resolver").joinpath("data/corenet-resolver.service").read_text()
    return text.replace(UNIT_EXECUTABLE, executable or installed_executable())
