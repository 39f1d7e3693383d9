"""corenet-fetch: a curl-like command on corenet.https, with names resolved by the
in-process recursive resolver when asked (`--resolve-with ROOT_HINTS`), all on one loop.

Flags, output and exit codes follow curl's, so that curl habits carry over: the command
line is ``fetch_options``, what is written ``fetch_output``, the exit codes ``fetch_codes``;
here, the transfer and its retries."""
from __future__ import annotations

import argparse
import asyncio
import copy
import importlib.util
import os
import sys
import time
from typing import Any, BinaryIO

from corenet.https.client import AsyncClient
from corenet.https.decoder import accept_encoding
from corenet.https.errors import ConnectError, HTTPError, TimeoutException, TLSError
from corenet.https.models import Request
from corenet.https.proxy import Proxy, parse_mounts
from corenet.https.timeout import Timeout
from corenet.https.transport import AsyncHTTPTransport
from corenet.tools.fetch_codes import (FILESIZE_EXCEEDED, HTTP_RETURNED_ERROR, RANGE_ERROR,
                                       WRITE_ERROR, CommandError, curl_words, exit_code)
from corenet.tools.fetch_options import (SCHEMES, Pinned, auth, condition_met, connect_to,
                                         cookie_jar, expand_config, join_dashed_values,
                                         make_parser, make_resolver, path_as_is, pins,
                                         protocols, redirect_methods, request_options,
                                         resume_offset, save_cookies, scheme_check,
                                         tls_context)
from corenet.tools.fetch_output import (PROGRESS_MIN, OpenedOnResponse, Trace, Transfer,
                                        dump_headers,
                                        head_block, output_name, remote_time,
                                        render_progress, rewind,
                                        verbose, write, write_out)


# HTTP statuses after which --retry tries again (curl's transient ones).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
RETRY_BACKOFF_MAX = 600.0  # curl's: the doubled pause stops growing at ten minutes


class Retry(Exception):
    """A transient HTTP status seen with --retry left: the body is not written; the
    server may have said how long to wait (Retry-After, in seconds)."""

    def __init__(self, status: int, after: float | None) -> None:
        super().__init__(f"HTTP error {status}")
        self.after = after


def _loop_factory():
    if importlib.util.find_spec("corenet._loop") is not None:
        import corenet

        return corenet.new_event_loop
    return None


async def fetch(args: argparse.Namespace, out: BinaryIO, err: Any,
                transfer: Transfer | None = None) -> int:
    method, url, kw = request_options(args)
    t = transfer if transfer is not None else Transfer(url)
    t.url, t.method = url, method
    resolver = make_resolver(args.resolve_with, args.dns_port, args.dns_query_localhost) \
        if args.resolve_with else None
    if args.resolve:
        resolver = Pinned(pins(args.resolve, url, args.connect_to), resolver)
    connect: Any = args.connect_timeout if args.connect_timeout is not None else args.timeout
    timeout = Timeout(args.timeout, connect=connect, total=args.max_time)
    jar = cookie_jar(args)
    http2 = bool(args.http2 or args.http2_prior_knowledge)
    http1 = not (args.http2_prior_knowledge and url.lower().startswith("http://"))
    proxy: Any = args.proxy
    if proxy and args.proxy_user is not None:
        user, _, password = args.proxy_user.partition(":")
        proxy = Proxy(proxy, auth=(user, password))
    noproxy = [h.strip().lower().lstrip(".") for h in (args.noproxy or "").split(",")
               if h.strip()]
    if "*" in noproxy:
        proxy, noproxy = None, []
    transport = AsyncHTTPTransport(
        verify=tls_context(args, http2, http1), resolver=resolver, proxy=proxy, http2=http2,
        http1=http1, uds=args.unix_socket, trust_env=args.noproxy is None or bool(noproxy),
        local_address={"4": "0.0.0.0", "6": "::"}.get(args.family or ""),
        connect_to=connect_to(args.connect_to) if args.connect_to else None,
        proxy_mounts=parse_mounts({f"all://{p}{h}": None for h in noproxy
                                   for p in ("", "*.")}))
    if args.http10:  # as curl's -0: http/1.0 offered in ALPN (the transport set http/1.1)
        transport.ssl_context.set_alpn_protocols(["http/1.0"])
    allowed = protocols(args.proto, frozenset(SCHEMES))
    redirects = protocols(args.proto_redir, frozenset(SCHEMES)) & allowed
    check = scheme_check(url, allowed, redirects)
    check(Request("GET", url))  # before any connection
    hooks: dict[str, list[Any]] = {"request": [check], "response": []}
    if args.path_as_is:
        on_request, on_response = path_as_is(url)
        hooks["request"].append(on_request)
        hooks["response"].append(on_response)
    if args.http10:
        kw["extensions"] = {"http_version": b"HTTP/1.0"}
    credentials = auth(args)
    if args.location_trusted and args.user is not None and args.auth_scheme != "digest":
        def trusted(request: Any) -> None:  # -u's Basic credentials to any host, as curl
            if "authorization" not in request.headers:
                next(credentials.auth_flow(request))
        hooks["request"].append(trusted)
    if args.follow:  # -w's time_redirect: when the last redirect followed had come
        def redirected(response: Any) -> None:
            if response.has_redirect_location:
                t.redirected = time.monotonic()
        hooks["response"].append(redirected)
    if args.follow:  # curl's rules for the method of a redirect's request
        on_request, on_response = redirect_methods(args, kw.get("content"))
        hooks["request"].append(on_request)
        hooks["response"].append(on_response)
    if args.request and args.follow:  # as curl: -X is every request's method, redirects too
        def keep_method(request: Any, custom: str = args.request.upper()) -> None:
            request.method = custom
        hooks["request"].append(keep_method)
    async with AsyncClient(transport=transport, timeout=timeout, follow_redirects=args.follow,
                      max_redirects=args.max_redirs, cookies=jar, auth=credentials,
                      event_hooks=hooks) as client:
        if args.user_agent:  # in the default's place, as curl sends it
            client.headers["User-Agent"] = args.user_agent
        for name in args.removed_headers:  # -H "Name:": not even the default
            if name in client.headers:
                del client.headers[name]
        if args.compressed:
            client.headers["Accept-Encoding"] = accept_encoding()
        else:  # as curl: the body comes as the server sends it, and is written so
            del client.headers["Accept-Encoding"]
        try:
            async with client.stream(method, url, **kw) as r:
                t.response = r
                stream = r.extensions.get("network_stream")
                t.local = stream.get_extra_info("client_addr") if stream is not None else None
                t.starttransfer = time.monotonic()
                code = await _receive(args, r, out, err, t)
        finally:
            if args.cookie_jar:
                save_cookies(client.cookies.jar, args.cookie_jar)
    return code


async def _receive(args: argparse.Namespace, r: Any, out: BinaryIO, err: Any,
                   t: Transfer) -> int:
    if args.verbose:
        connections: dict[Any, int] = {}
        for h in (*r.history, r):
            verbose(h, err, connections)
        err.flush()
    trace = args.trace_out
    if trace is not None:
        for h in r.history:
            trace.exchange(h, True)
        trace.exchange(r, False)
    if getattr(args, "retries_left", 0) and (
            r.status_code in RETRY_STATUSES
            or args.retry_all_errors and (args.fail or args.fail_with_body)
            and r.status_code >= 400):
        after_text = r.headers.get("retry-after", "")
        after = float(after_text) if after_text.isdigit() else None
        if _retry_fits(args, after):
            raise Retry(r.status_code, after)
    if getattr(args, "resume_from", 0):
        if r.status_code == 416:  # as curl: the file is whole already
            return 0
        if r.status_code < 300 and r.status_code != 206:
            raise CommandError("HTTP server doesn't seem to support byte ranges. "
                               "Cannot resume.", RANGE_ERROR)
    if args.time_cond and r.status_code == 304:  # as curl: not newer, nothing written
        return 0
    condition = getattr(args, "condition", None)
    if condition and r.status_code == 200 and not condition_met(condition, r):
        t.status = 304  # as curl: the answer a server keeping the condition would give
        return 0
    failed = (args.fail or args.fail_with_body) and r.status_code >= 400
    if isinstance(out, OpenedOnResponse) and not (failed and not args.fail_with_body):
        try:
            t.filename = out.open_for(r)
        except CommandError as exc:  # curl's warning (unless -s), then its error
            if not args.silent:
                err.write(f"Warning: {exc}\n")
            raise CommandError("Failed writing header", WRITE_ERROR) from None
    heads = (*r.history, r) if args.follow else (r,)
    if args.dump_header:
        dump_headers(args.dump_header, heads)
    if args.head or args.include:
        for h in heads:
            write(out, head_block(h))
    if args.head or (failed and not args.fail_with_body):
        if failed:
            raise CommandError(f"The requested URL returned error: {r.status_code}",
                             HTTP_RETURNED_ERROR)
        return 0
    length = r.headers.get("content-length")
    total = int(length) if length and length.isdigit() else None
    limit = args.max_filesize
    if limit is not None and total is not None and total > limit:
        raise CommandError("Maximum file size exceeded", FILESIZE_EXCEEDED)
    show = not (args.silent or args.no_progress_meter) and err.isatty() and \
        (total is None or total >= PROGRESS_MIN)
    start = last = time.monotonic()
    chunks = r.aiter_bytes() if args.compressed else r.aiter_raw()
    async for chunk in chunks:
        if trace is not None:
            trace.dump("<= Recv data", chunk)
        write(out, chunk)
        if args.no_buffer:
            out.flush()
        # as curl's: the bytes received, before --compressed's decoding
        t.size_download = r.num_bytes_downloaded if args.compressed else \
            t.size_download + len(chunk)
        if limit is not None and t.size_download > limit:
            raise CommandError("Maximum file size exceeded", FILESIZE_EXCEEDED)
        if args.limit_rate and t.size_download != total:  # the average kept to the rate
            ahead = t.size_download / args.limit_rate - (time.monotonic() - start)
            if ahead > 0:
                await asyncio.sleep(min(ahead, 60.0))
        if show:
            now = time.monotonic()
            if now - last > 0.1:
                last = now
                err.write(render_progress(t.size_download, total, now - start))
                err.flush()
    if show:
        err.write(render_progress(t.size_download, total, time.monotonic() - start) + "\n")
    if failed:
        raise CommandError(f"The requested URL returned error: {r.status_code}",
                         HTTP_RETURNED_ERROR)
    return 0


def _transient(args: argparse.Namespace, exc: BaseException) -> bool:
    if args.retry_all_errors:
        return isinstance(exc, (HTTPError, CommandError))
    if isinstance(exc, TimeoutException):
        return True
    return args.retry_connrefused and isinstance(exc, ConnectError) and \
        not isinstance(exc, TLSError) and exit_code(exc) == 7


def _retry_wait(args: argparse.Namespace, after: float | None) -> float:
    """How long before the next attempt: --retry-delay, else the doubling pause; longer
    when the server's Retry-After asks it."""
    wait = args.retry_delay if args.retry_delay is not None else args.retry_pause
    return wait if after is None else max(wait, after)


def _retry_fits(args: argparse.Namespace, after: float | None) -> bool:
    """Whether another attempt would still start within --retry-max-time."""
    return args.retry_max_time is None or (
        time.monotonic() + _retry_wait(args, after) - args.retry_first <= args.retry_max_time)


def _attempts(args: argparse.Namespace, runner: asyncio.Runner, out: BinaryIO,
              transfer: Transfer, quiet: bool) -> int:
    """The transfer, and --retry's further attempts after a transient failure: the
    output file, if any, is written afresh by each."""
    args.retries_left = args.retry
    args.retry_pause = 1.0
    args.retry_first = time.monotonic()
    while True:
        try:
            return runner.run(fetch(args, out, sys.stderr, transfer))
        except (Retry, HTTPError, CommandError) as exc:
            if isinstance(exc, Retry):
                after = exc.after
            elif args.retries_left and _transient(args, exc) and _retry_fits(args, None):
                after = None
            else:
                raise
            wait = _retry_wait(args, after)
            if not quiet:
                print(f"corenet-fetch: warning: transient problem ({exc}); retrying in "
                      f"{wait:g} s, {args.retries_left} retries left", file=sys.stderr)
            args.retries_left -= 1
            time.sleep(wait)
            args.retry_pause = min(args.retry_pause * 2, RETRY_BACKOFF_MAX)
            written, transfer.size_download = transfer.size_download, 0
            if written and out is not sys.stdout.buffer:  # as curl: what this try wrote
                rewind(out, getattr(args, "resume_from", 0))  # goes, -C's start stays


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    # a bad command line exits 2, as curl's
    parser.argv = sys.argv[1:] if argv is None else argv
    try:
        full = expand_config(parser.argv, parser)
    except CommandError as exc:  # as curl's: the file named, the option, a hint
        parser.exit(exc.code, f"{parser.prog}: {exc}\n"
                              f"{parser.prog}: try '{parser.prog} --help' for more information\n")
    args = parser.parse_intermixed_args(join_dashed_values(full))
    urls = args.url + args.url_option
    if not urls:
        parser.error("no URL specified!")
    quiet = args.silent and not args.show_error
    if args.stderr:
        try:
            sys.stderr = sys.stdout if args.stderr == "-" else open(args.stderr, "w")
        except OSError as exc:
            parser.error(f"--stderr: cannot write {args.stderr}: {exc.strerror or exc}")
    # As curl: the URLs one after another, each -o (then each -O) for the next URL, the
    # others to standard output; the exit code is the last transfer's.
    outputs, remote_names = args.output, args.remote_name
    args.trace_out = Trace(args.trace[1], args.trace[0] == "ascii") if args.trace else None
    code = 0
    try:
        for i, url in enumerate(urls):
            one = copy.copy(args)
            one.url, one.urlnum = url, i
            one.output = outputs[i] if i < len(outputs) else None
            one.remote_name = 0 <= i - len(outputs) < remote_names
            code = _transfer(one, quiet)
            if code and args.fail_early:
                break
    finally:
        if args.trace_out is not None:
            args.trace_out.close()
    return code


def _transfer(args: argparse.Namespace, quiet: bool) -> int:
    """One URL fetched, its output written and -w reported: curl's exit code."""
    out: BinaryIO = sys.stdout.buffer
    transfer = Transfer(args.url, urlnum=args.urlnum)
    name = None
    code = 0

    def report(code: int, message: str) -> int:
        transfer.exitcode, transfer.errormsg = code, message
        if args.trace_out is not None:  # as curl's trace ends with the error
            args.trace_out.info(message)
        if not quiet:
            print(f"corenet-fetch: ({code}) {message}", file=sys.stderr)
        return code

    try:
        name = output_name(args)
        transfer.filename = name or ""
        args.resume_from = resume_offset(args.continue_at, name)
        by_header = bool(args.remote_name and args.remote_header_name)
        if name and (by_header or args.time_cond) and not args.resume_from:
            out = OpenedOnResponse(name, args.output_dir,  # type: ignore[assignment]
                                   by_header)
        elif name:
            try:
                out = open(name, "ab" if args.resume_from else "wb")
            except OSError as exc:  # curl's warning (unless -s), then its error
                if not args.silent:
                    print(f"Warning: Failed to open the file {name}: {exc.strerror or exc}",
                          file=sys.stderr)
                raise CommandError("Failure writing output to destination",
                                   WRITE_ERROR) from None
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            code = _attempts(args, runner, out, transfer, quiet)
    except HTTPError as exc:
        code = exit_code(exc)
        r = transfer.response
        length = r.headers.get("content-length", "") if r is not None else ""
        ms = int((time.monotonic() - transfer.start) * 1000)
        code = report(code, curl_words(exc, code, args.url, ms, transfer.size_download,
                                       int(length) if length.isdigit() else None,
                                       args.max_redirs,
                                       connect_to(args.connect_to) if args.connect_to
                                       else None))
    except CommandError as exc:
        code = report(exc.code, str(exc))
    except KeyboardInterrupt:
        code = 130
    finally:
        transfer.end = time.monotonic()
        try:
            if name and out is not sys.stdout.buffer:
                out.close()
                if code and args.remove_on_error:
                    os.remove(out.name)
                elif not code and args.remote_time and transfer.response is not None \
                        and getattr(out, "file", out) is not None:  # a file written
                    remote_time(out.name, transfer.response)
            else:
                out.flush()
        except OSError as exc:
            code = code or report(WRITE_ERROR, f"failure writing output: {exc.strerror or exc}")
    transfer.exitcode = code
    if args.write_out is not None:
        try:
            for stream, text in write_out(args.write_out, transfer, sys.stderr):
                out_stream = sys.stderr if stream == "stderr" else sys.stdout
                out_stream.write(text)
                out_stream.flush()
        except OSError as exc:
            code = code or report(WRITE_ERROR, f"-w: {exc.strerror or exc}")
    return code


if __name__ == "__main__":
    sys.exit(main())
