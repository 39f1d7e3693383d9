"""The daemon's start: the config checked, the descriptor limit fitted, the user chosen, the
control socket prepared, then one :class:`~resolver.daemon.worker.Worker` serving alone, or a
:class:`~resolver.daemon.supervisor.Supervisor` of ``workers`` of them.
"""
from __future__ import annotations

import logging
import os
import pwd
from dataclasses import replace
from typing import Any

from resolver.daemon import config as config_mod
from resolver.daemon import logs
from resolver.daemon.config import Config, ConfigError
from resolver.daemon.service import Notifier, prepare_control
from resolver.daemon.supervisor import Supervisor
from resolver.daemon.worker import Worker, fit_descriptors

log = logging.getLogger("resolver.daemon.process")


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
        return Worker(cfg, overrides, cfg.control, cfg.metrics, notifier, tls).run()
    return Supervisor(cfg, overrides, notifier, tls).run()


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
    """The directories of the installed code (corenet, the resolver and dnspython, each
    imported lazily) that ``pw``'s user could not read."""
    import corenet
    import dns
    import resolver
    code = [os.path.dirname(m.__file__) for m in (corenet, resolver, dns)]
    return [c for c in code if not _reachable_by(pw, c)]


def choose_user(cfg: Config, overrides: dict[str, Any] | None):
    """The user to run as: the configured one, or, started as root with none configured,
    :data:`DEFAULT_USER` (else :data:`FALLBACK_USER`) if it can read the installed code.
    Returns the config and overrides to run with (a reload keeps the choice). A configured
    user that cannot read the installed code is a ConfigError: modules load lazily, so a
    worker started again as that user, or a first use of a feature, would fail later."""
    if os.geteuid() != 0:
        return cfg, overrides
    if cfg.user:
        try:
            blocked = unreadable_code(pwd.getpwnam(cfg.user))
        except KeyError:
            raise ConfigError(f"user: no such user {cfg.user!r}") from None
        if blocked:
            raise ConfigError(f"user: {cfg.user} could not read {blocked[0]} (install the "
                              "package where that user can read it, or run as another user)")
        return cfg, overrides
    if cfg.user is not None:
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
