"""A real redis-server (Debian's) for the shared cache's tests: on a free loopback port and a
Unix socket in the test's directory, nothing saved to disk, stopped by PID."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from ci_policy import unavailable
from ports import free_port
from procs import stop as stop_process
from procs import stopped_unless_ready

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    def __init__(self, workdir: Path, port: int | None = None, host: str = "127.0.0.1",
                 conf: str | None = None, password: str | None = None) -> None:
        if not os.path.exists(REDIS_SERVER):
            unavailable("redis-server (Debian package 'redis-server') is not installed: "
                        "scripts/setup.sh installs it")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port()
        self.socket = str(self.workdir / "redis.sock")
        self.conf = conf                 # a redis.conf to start from (the options below win)
        self.password = password         # requirepass: every client must AUTH
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "Redis":
        cmd = [REDIS_SERVER, *([self.conf] if self.conf else []), "--port", str(self.port), "--bind", self.host, "--save", "",
               "--appendonly", "no", "--unixsocket", self.socket, "--unixsocketperm", "700",
               "--dir", str(self.workdir), "--daemonize", "no", "--protected-mode", "no",
               *(["--requirepass", self.password] if self.password else [])]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(self.workdir / "redis.log", "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        with stopped_unless_ready(self.proc, group=True):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.log()[-2000:]}")
                try:
                    if self.client().ping():
                        return self
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server not ready: {self.log()[-2000:]}")
                time.sleep(0.05)

    def client(self, db: int = 0):
        import redis
        return redis.Redis(unix_socket_path=self.socket, socket_timeout=2, db=db,
                           password=self.password)

    def log(self) -> str:
        try:
            return (self.workdir / "redis.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, 5.0, group=True)
        self.proc = None

    def keys(self) -> int:
        return self.client().dbsize()
