"""corenet-fetch: a curl-like command on corenet.https, with names resolved by the
in-process recursive resolver when asked (`--resolve-with ROOT_HINTS`), all on one loop."""
from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import os
import sys
import time
from typing import Any, BinaryIO

from .client import Client
from .errors import HTTPError
from .timeout import Timeout

PROGRESS_MIN = 1024 * 1024  # bodies smaller than this finish before a bar would help


class UsageError(Exception):
    """A problem with the command line or the environment: message printed, exit 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="corenet-fetch",
                                description="Fetch a URL over HTTPS/1.1 with corenet.https.")
    p.add_argument("url")
    p.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE")
    p.add_argument("-I", "--head", action="store_true", help="HEAD request; print headers")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show address, TLS and headers on stderr")
    p.add_argument("--cacert", metavar="FILE", help="trust the CA certificates in FILE")
    p.add_argument("-k", "--insecure", action="store_true",
                   help="do not verify the server certificate (explicit opt-out)")
    p.add_argument("--resolve-with", metavar="ROOT_HINTS",
                   help="resolve the host with corenet's recursive resolver from these root hints")
    p.add_argument("--dns-port", type=int, default=None, metavar="PORT",
                   help="with --resolve-with: the port authorities listen on (a test lab)")
    p.add_argument("--dns-query-localhost", action="store_true",
                   help="with --resolve-with: let authorities be asked at loopback addresses "
                        "(a test lab; refused by default, as Unbound's do-not-query-localhost)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="connect/read/write timeout (default 30)")
    p.add_argument("--max-time", type=float, default=None, metavar="SECONDS",
                   help="overall deadline for the whole transfer")
    p.add_argument("-L", "--location", dest="follow", action="store_true",
                   help="follow redirects (as curl: not followed unless asked)")
    p.add_argument("-X", "--request", metavar="METHOD", help="the request method")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="an extra request header (repeatable)")
    p.add_argument("-d", "--data", metavar="DATA",
                   help="send DATA (or the contents of @FILE) as a form body, with POST")
    p.add_argument("-u", "--user", metavar="USER:PASSWORD", help="Basic authentication")
    p.add_argument("-x", "--proxy", metavar="URL", help="use this HTTP(S) proxy")
    p.add_argument("-f", "--fail", action="store_true",
                   help="exit with 22 on an HTTP error status (400 and above)")
    p.add_argument("-s", "--silent", action="store_true", help="no progress meter")
    return p


def _request_options(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Method and Client.stream() keywords from curl-style options."""
    headers = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"-H needs 'Name: value', not {h!r}")
        headers.append((name.strip(), value.strip()))
    kw: dict[str, Any] = {"headers": headers}
    if args.data is not None:
        data = args.data
        if data.startswith("@"):
            try:
                with open(data[1:], "rb") as f:
                    body = f.read()
            except OSError as exc:
                raise UsageError(f"cannot read {data[1:]}: {exc}") from None
        else:
            body = data.encode()
        kw["content"] = body
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    if args.user is not None:
        user, _, password = args.user.partition(":")
        kw["auth"] = (user, password)
    method = args.request or ("HEAD" if args.head else "POST" if args.data is not None
                              else "GET")
    return method.upper(), kw


def make_resolver(root_hints: str, port: int | None = None,
                  query_localhost: bool = False) -> Any:
    """The recursive resolver that a package registers as the ``recursive`` entry point of
    the ``corenet.resolvers`` group (corenet's distribution registers its ``resolver``),
    loaded only here: plain fetches must not pay for (or need) it."""
    cls = None
    for ep in importlib.metadata.entry_points(group="corenet.resolvers", name="recursive"):
        try:
            cls = ep.load()
        except ImportError:
            cls = None
        break
    if cls is None:
        raise UsageError("--resolve-with needs corenet's resolver package ('resolver'), "
                         "which is not installed")
    if not os.path.exists(root_hints):
        raise UsageError(f"root hints file {root_hints!r} not found")
    kw: dict[str, Any] = {"root_hints": root_hints}
    if port is not None:
        kw["port"] = port
    if query_localhost:
        kw["do_not_query_localhost"] = False
    return cls(**kw)


def render_progress(done: int, total: int | None, elapsed: float, width: int = 30) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    speed = f"{rate / 1e6:7.2f} MB/s"
    if total:
        frac = min(1.0, done / total)
        bar = "#" * int(frac * width)
        return f"\r[{bar:<{width}}] {frac * 100:5.1f}% {done / 1e6:9.2f} MB {speed}"
    return f"\r{done / 1e6:9.2f} MB {speed}"


def _loop_factory():
    if importlib.util.find_spec("corenet._loop") is not None:
        import corenet

        return corenet.new_event_loop
    return None


async def fetch(args: argparse.Namespace, out: BinaryIO, err: Any) -> int:
    verify: Any = True
    if args.insecure:
        verify = False
    elif args.cacert:
        verify = args.cacert
    resolver = make_resolver(args.resolve_with, args.dns_port, args.dns_query_localhost) \
        if args.resolve_with else None
    timeout = Timeout(args.timeout, total=args.max_time)
    method, kw = _request_options(args)
    async with Client(verify=verify, resolver=resolver, timeout=timeout,
                      follow_redirects=args.follow, proxy=args.proxy) as client:
        async with client.stream(method, args.url, **kw) as r:
            if args.verbose:
                for h in r.history:
                    err.write(f"< {h.http_version} {h.status_code} {h.reason_phrase} "
                              f"-> {h.headers.get('location')}\n")
                so = r.extensions.get("ssl_object")
                if so is not None:
                    err.write(f"* TLS {so.version()} {so.cipher()[0]}, ALPN "
                              f"{so.selected_alpn_protocol()}, resumed={so.session_reused}\n")
                err.write(f"< {r.http_version} {r.status_code} {r.reason_phrase}\n")
                for k, v in r.headers.multi_items():
                    err.write(f"< {k}: {v}\n")
                err.flush()
            if args.head:
                lines = [f"{r.http_version} {r.status_code} {r.reason_phrase}"]
                lines += [f"{k}: {v}" for k, v in r.headers.multi_items()]
                out.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                return 0
            length = r.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            show = not args.silent and err.isatty() and (total is None
                                                          or total >= PROGRESS_MIN)
            done = 0
            start = last = time.monotonic()
            async for chunk in r.aiter_bytes():
                out.write(chunk)
                done += len(chunk)
                if show:
                    now = time.monotonic()
                    if now - last > 0.1:
                        last = now
                        err.write(render_progress(done, total, now - start))
                        err.flush()
            if show:
                err.write(render_progress(done, total, time.monotonic() - start) + "\n")
            return 22 if args.fail and r.status_code >= 400 else 0  # curl -f's code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out: BinaryIO
    try:
        out = open(args.output, "wb") if args.output else sys.stdout.buffer
    except OSError as exc:
        print(f"corenet-fetch: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            code = runner.run(fetch(args, out, sys.stderr))
    except HTTPError as exc:
        print(f"corenet-fetch: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    except UsageError as exc:
        print(f"corenet-fetch: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    finally:
        if args.output:
            out.close()
        else:
            out.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
