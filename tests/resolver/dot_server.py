"""The daemon's server in the test's own process with a DNS-over-TLS listener over the lab:
its settings (a fresh CA and server certificate, free ports) and the server itself."""
from __future__ import annotations

from ports import free_port
from resolver.daemon.server import Server
from tls_certs import CA


def dot_settings(tmp_path, lab) -> tuple[dict, CA, int, int]:
    """(settings for ``config.build``, the CA, the UDP/TCP port, the DNS-over-TLS port)."""
    ca = CA(tmp_path / "pki")
    pem, key = ca.issue("server")
    port, tls_port = free_port(), free_port()
    settings = {"listen": [f"127.0.0.1:{port}"], "root_hints": None,
                "upstream_port": lab.port, "do_not_query_localhost": False,
                "tls_listen": [f"127.0.0.1:{tls_port}"], "tls_service_pem": str(pem),
                "tls_service_key": str(key)}
    return settings, ca, port, tls_port


def lab_server(cfg, lab) -> Server:
    """A server (not started) for ``cfg`` whose resolver asks the lab."""
    import resolver

    return Server(cfg, resolver=resolver.Resolver(lab.root_hints, port=lab.port,
                                                  cache_size=cfg.cache_size,
                                                  do_not_query_localhost=False))
