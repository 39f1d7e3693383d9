"""corenet's asyncio event loop: the public class, the policy and the entry points.

The hot parts (ready queue, timers, epoll, sock_* calls) are in the Cython ``_loop`` module;
this file adds the rest of ``asyncio.AbstractEventLoop`` where Python costs nothing that
matters: running, closing, errors, signals, executors, name resolution, async generators.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import inspect
import io
import logging
import os
import signal
import socket
import sys
import threading
import traceback
import warnings
import weakref
from typing import Any, Awaitable, Callable, Coroutine, Literal, TypeVar

from asyncio import base_events, constants, unix_events

from corenet import _loop, _stream, transports

__all__ = ["Loop", "new_event_loop", "install", "run"]

logger = logging.getLogger("asyncio")
T = TypeVar("T")
Trigger = Literal["edge", "level"]


def _noop_signal_handler(signum, frame):
    """Installed for signals with a loop handler: the C-level wakeup fd does the work."""


# From 3.12, asyncio runs a custom exception handler in the contextvars.Context of the task,
# future or handle the error came from (gh-96704), so the handler sees what that code set.
_HANDLER_IN_ITS_CONTEXT = sys.version_info >= (3, 12)


def _handler_context(context: dict[str, Any]):
    thing = context.get("task")
    if thing is None:
        thing = context.get("future")
    if thing is None:
        thing = context.get("handle")
    get_context = getattr(thing, "get_context", None)
    ctx = get_context() if get_context is not None else None
    return ctx if hasattr(ctx, "run") else None


class Loop(_loop.BaseLoop, asyncio.AbstractEventLoop):
    """A drop-in ``asyncio`` event loop on epoll.

    ``trigger`` chooses how this loop's transports use epoll: ``"edge"`` (register once,
    EPOLLET) or ``"level"``; ``add_reader``/``add_writer`` keep asyncio's level-triggered
    semantics either way. The default comes from ``$CORENET_TRIGGER``.
    """

    def __init__(self, *, trigger: Trigger | None = None) -> None:
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._signal_handlers: dict[int, _loop.Handle] = {}
        self._signal_pipe: tuple[int, int] | None = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth = None
        # Listening Unix sockets whose file closing removes (asyncio's create_unix_server
        # fills it from 3.13 on, cleanup_socket=True): socket -> the file's inode at bind.
        self._unix_server_sockets: dict[socket.socket, int] = {}
        super().__init__(trigger=trigger)
        self.set_debug(_debug_mode_from_environment())

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name == "time":          # a fake clock set on the loop drives its timers
            self._watch_time()

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        if name == "time":
            self._watch_time()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} trigger={self.trigger} running={self.is_running()} "
                f"closed={self.is_closed()} debug={self.get_debug()}>")

    def __del__(self, _warn=warnings.warn) -> None:
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    # ------------------------------------------------------------------ running

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if asyncio._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def run_forever(self) -> None:
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        self._check_running()
        self._set_coroutine_origin_tracking(self.get_debug())
        old_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        try:
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            asyncio._set_running_loop(self)
            self._run_forever_inner()
        finally:
            self._thread_id = None
            asyncio._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_hooks)

    def run_until_complete(self, future: Awaitable[T]) -> T:
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        self._check_running()
        new_task = not asyncio.isfuture(future)
        future = asyncio.ensure_future(future, loop=self)
        if new_task:
            # An exception escaping here must not also be logged as never retrieved.
            future._log_destroy_pending = False
        future.add_done_callback(_stop_when_done)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()
            raise
        finally:
            future.remove_done_callback(_stop_when_done)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self.get_debug():
            logger.debug("Close %r", self)
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)
        if self._signal_pipe is not None:
            for fd in self._signal_pipe:
                os.close(fd)
            self._signal_pipe = None
        self._close_core()
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)

    # ------------------------------------------------------------------ debug

    def set_debug(self, enabled: bool) -> None:
        self._set_debug_flag(enabled)
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(asyncio.constants.DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(self._coroutine_origin_tracking_saved_depth)
        self._coroutine_origin_tracking_enabled = enabled

    # ------------------------------------------------------------------ errors

    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Logs ``context`` to the ``asyncio`` logger, as every asyncio loop does."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info = (type(exception), exception, exception.__traceback__) if exception is not None else False
        current = self._current_handle
        if ("source_traceback" not in context and current is not None
                and current._source_traceback):
            context["handle_traceback"] = current._source_traceback
        lines = [message]
        for key in sorted(context):
            if key in ("message", "exception"):
                continue
            value = context[key]
            if key in ("source_traceback", "handle_traceback"):
                where = "Object" if key == "source_traceback" else "Handle"
                value = (f"{where} created at (most recent call last):\n"
                         + "".join(traceback.format_list(value)).rstrip())
            else:
                value = repr(value)
            lines.append(f"{key}: {value}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            ctx = _handler_context(context) if _HANDLER_IN_ITS_CONTEXT else None
            if ctx is not None:
                ctx.run(handler, self, context)
            else:
                handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    "message": "Unhandled error in exception handler",
                    "exception": exc,
                    "context": context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler while handling an "
                             "unexpected error in custom exception handler", exc_info=True)

    # ------------------------------------------------------------------ async generators

    def _asyncgen_firstiter_hook(self, agen) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(f"asynchronous generator {agen!r} was scheduled after "
                          "loop.shutdown_asyncgens() call", ResourceWarning, source=self)
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    async def shutdown_asyncgens(self) -> None:
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        agens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*[ag.aclose() for ag in agens], return_exceptions=True)
        for result, agen in zip(results, agens):
            if isinstance(result, Exception):
                self.call_exception_handler({
                    "message": f"an error occurred during closing of asynchronous generator {agen!r}",
                    "exception": result,
                    "asyncgen": agen,
                })

    # ------------------------------------------------------------------ executors

    def run_in_executor(self, executor, func: Callable[..., T], *args) -> asyncio.Future[T]:
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        if self.get_debug():
            _loop_check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()
        thread = threading.Thread(target=self._shutdown_executor_in_thread, args=(executor, done))
        thread.start()
        try:
            await done
        finally:
            thread.join(timeout)
        if thread.is_alive():
            warnings.warn(f"The executor did not finish joining its threads within {timeout} "
                          "seconds.", RuntimeWarning, stacklevel=2)
            executor.shutdown(wait=False)

    def _shutdown_executor_in_thread(self, executor, done) -> None:
        try:
            executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(_set_result_unless_done, done, None)
        except Exception as exc:
            if not self.is_closed():
                self.call_soon_threadsafe(_set_exception_unless_done, done, exc)

    # ------------------------------------------------------------------ name resolution

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        return await self.run_in_executor(None, socket.getaddrinfo, host, port, family,
                                          type, proto, flags)

    async def getnameinfo(self, sockaddr, flags=0):
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    async def sock_connect(self, sock, address) -> None:
        self._check_sock(sock)   # before resolving, as asyncio
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            address = await self._resolve_sock_address(sock, address)
        return await self._sock_connect_resolved(sock, address)

    async def _resolve_sock_address(self, sock, address):
        host, port = address[:2]
        if _is_numeric_host(sock.family, host):
            if type(port) is int:
                return address
            number = _numeric_port(port)
            if number is not None:
                return (host, number, *address[2:])
        infos = await self.getaddrinfo(host, port, family=sock.family, type=sock.type,
                                       proto=sock.proto)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos[0][4]

    # ------------------------------------------------------------------ sendfile

    async def sock_sendfile(self, sock, file, offset: int = 0, count: int | None = None,
                            *, fallback: bool = True) -> int:
        if self.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        _check_sendfile_params(sock, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count, self._wait_writable)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(self, sock, file, offset, count, wait_writable) -> int:
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation) as exc:
            raise asyncio.SendfileNotAvailableError("not a regular file") from exc
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise asyncio.SendfileNotAvailableError("not a regular file")
        blocksize = count if count else fsize
        if not blocksize:
            return 0
        blocksize = min(blocksize, 0xFFFF_FFFF)
        end = offset + count if count else fsize
        pos = offset
        sent_total = 0
        try:
            while pos < end:
                n_wanted = min(end - pos, blocksize)
                try:
                    sent = os.sendfile(sock.fileno(), fileno, pos, n_wanted)
                except (BlockingIOError, InterruptedError):
                    await wait_writable(sock)
                    continue
                except OSError as exc:
                    if exc.errno == errno.ENOTSOCK or (sent_total == 0 and exc.errno in (
                            errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)):
                        raise asyncio.SendfileNotAvailableError("os.sendfile() is not usable here") from exc
                    raise
                if sent == 0:
                    break
                pos += sent
                sent_total += sent
            return sent_total
        finally:
            if sent_total > 0 and hasattr(file, "seek"):
                file.seek(offset + sent_total)

    async def _wait_writable(self, sock) -> None:
        fut = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        self.add_writer(fd, _set_result_unless_done, fut, None)
        try:
            await fut
        finally:
            self.remove_writer(fd)

    async def _sock_sendfile_fallback(self, sock, file, offset, count) -> int:
        if offset:
            file.seek(offset)
        blocksize = min(count, 256 * 1024) if count else 256 * 1024
        buf = bytearray(blocksize)
        total = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total, blocksize)
                    if blocksize <= 0:
                        break
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    break
                await self.sock_sendall(sock, view[:read])
                total += read
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset + total)

    # ------------------------------------------------------------------ signals

    def _signal_wakeup_fd(self) -> int:
        if self._signal_pipe is None:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._signal_pipe = (r, w)
            self._add_reader(r, self._read_signals)
        return self._signal_pipe[1]

    def _read_signals(self) -> None:
        assert self._signal_pipe is not None
        while True:
            try:
                data = os.read(self._signal_pipe[0], 4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                if signum:
                    self._handle_signal(signum)

    def _handle_signal(self, sig: int) -> None:
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return
        if handle.cancelled():
            self.remove_signal_handler(sig)
        else:
            self.call_soon(handle._run)

    def add_signal_handler(self, sig: int, callback: Callable[..., object], *args) -> None:
        if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        try:
            signal.set_wakeup_fd(self._signal_wakeup_fd())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        handle = _loop.Handle(callback, args, self, None)
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, _noop_signal_handler)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError) as nexc:
                    logger.info("set_wakeup_fd(-1) failed: %s", nexc)
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught")
            raise

    def remove_signal_handler(self, sig: int) -> bool:
        _check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, default)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught")
            raise
        if not self._signal_handlers:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError) as exc:
                logger.info("set_wakeup_fd(-1) failed: %s", exc)
        return True


    # ------------------------------------------------------------------ transports
    #
    # Connection set-up is the cold path, and asyncio's own code for it is the reference
    # for its semantics (happy eyeballs, interleave, address families, server sockets):
    # corenet runs that code unchanged on top of its own transports, which are created
    # through the hooks below. TLS (start_tls and the hook) adds half-close (corenet.tls).

    _BASE = base_events.BaseEventLoop
    _UNIX = asyncio.SelectorEventLoop        # the Unix selector loop
    create_connection = _BASE.create_connection
    _ensure_resolved = _BASE._ensure_resolved
    _connect_sock = _BASE._connect_sock
    _create_connection_transport = _BASE._create_connection_transport
    create_server = _BASE.create_server
    _create_server_getaddrinfo = _BASE._create_server_getaddrinfo
    connect_accepted_socket = _BASE.connect_accepted_socket
    create_datagram_endpoint = _BASE.create_datagram_endpoint
    sendfile = _BASE.sendfile
    _sendfile_fallback = _BASE._sendfile_fallback
    connect_read_pipe = _BASE.connect_read_pipe
    connect_write_pipe = _BASE.connect_write_pipe
    subprocess_exec = _BASE.subprocess_exec
    subprocess_shell = _BASE.subprocess_shell
    _log_subprocess = _BASE._log_subprocess
    create_unix_connection = _UNIX.create_unix_connection
    create_unix_server = _UNIX.create_unix_server
    _make_read_pipe_transport = _UNIX._make_read_pipe_transport
    _make_write_pipe_transport = _UNIX._make_write_pipe_transport
    del _BASE, _UNIX

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        return transports.make_stream(self, sock, protocol, waiter, extra, server)

    async def start_tls(self, transport, protocol, sslcontext, *, server_side=False,
                        server_hostname=None, ssl_handshake_timeout=None,
                        ssl_shutdown_timeout=None):
        from corenet import tls       # loaded with the first TLS connection (_tls_protocol)

        return await tls.start_tls(self, transport, protocol, sslcontext,
                                   server_side=server_side, server_hostname=server_hostname,
                                   ssl_handshake_timeout=ssl_handshake_timeout,
                                   ssl_shutdown_timeout=ssl_shutdown_timeout)

    def _make_ssl_transport(self, rawsock, protocol, sslcontext, waiter=None, *,
                            server_side=False, server_hostname=None, extra=None, server=None,
                            ssl_handshake_timeout=constants.SSL_HANDSHAKE_TIMEOUT,
                            ssl_shutdown_timeout=constants.SSL_SHUTDOWN_TIMEOUT,
                            call_connection_made=True):
        # TLS runs over a MemoryBIO (corenet.tls: asyncio's TLS semantics with half-close
        # added, compiled, a BufferedProtocol) on top of a plain corenet stream transport:
        # the kernel reads straight into its buffer.
        ssl_protocol = _tls_protocol()(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            call_connection_made=call_connection_made)
        transports.make_stream(self, rawsock, ssl_protocol, None, extra, server)
        return ssl_protocol._app_transport

    async def _sendfile_native(self, transp, file, offset, count):
        """loop.sendfile() on a corenet transport: drain its queue, then os.sendfile."""
        engine = getattr(transp, "_engine", None)
        if not isinstance(engine, _stream.StreamTransport):
            raise asyncio.SendfileNotAvailableError(f"{transp!r} is not a corenet socket transport")
        resume_reading = transp.is_reading()
        transp.pause_reading()
        await transp._make_empty_waiter()
        try:
            return await self._sock_sendfile_native(
                engine._sock, file, offset, count, lambda sock: engine._wait_writable())
        finally:
            transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()

    def _make_datagram_transport(self, sock, protocol, address=None, waiter=None, extra=None):
        return transports.make_datagram(self, sock, protocol, address, waiter, extra)

    def _start_serving(self, protocol_factory, sock, sslcontext=None, server=None, backlog=100,
                       ssl_handshake_timeout=constants.SSL_HANDSHAKE_TIMEOUT,
                       ssl_shutdown_timeout=constants.SSL_SHUTDOWN_TIMEOUT):
        acceptor = _stream.Acceptor(sock.fileno())
        acceptor._start(self, sock, protocol_factory, sslcontext, server, backlog,
                        ssl_handshake_timeout, ssl_shutdown_timeout, transports.SocketTransport)

    def _stop_serving(self, sock) -> None:
        inode = self._unix_server_sockets.pop(sock, None)
        path = sock.getsockname() if inode is not None else None
        watcher = self._get_watcher(sock.fileno())
        if isinstance(watcher, _stream.Acceptor):
            watcher._stop()
        sock.close()
        if path is not None:
            # Only the file this server bound: another server may have taken the path since.
            try:
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)

    def _tls_server_protocol(self, app_protocol, sslcontext, ssl_handshake_timeout,
                             ssl_shutdown_timeout):
        """The TLS protocol an accepted connection of an ``ssl=`` server starts with: the
        acceptor gives it the connection as it gives a plain server's protocol. A failed
        handshake closes the connection (the TLS protocol's fatal-error path, logged in
        debug mode)."""
        return _tls_protocol()(self, app_protocol, sslcontext, None, server_side=True,
                              ssl_handshake_timeout=ssl_handshake_timeout,
                              ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def _make_subprocess_transport(self, protocol, args, shell, stdin, stdout, stderr,
                                         bufsize, extra=None, **kwargs):
        """Child exit is noticed through a pidfd in epoll: no SIGCHLD handler, no thread."""
        waiter = self.create_future()
        transp = unix_events._UnixSubprocessTransport(
            self, protocol, args, shell, stdin, stdout, stderr, bufsize,
            waiter=waiter, extra=extra, **kwargs)
        self._watch_child(transp.get_pid(), transp)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp

    def _watch_child(self, pid: int, transp) -> None:
        pidfd = os.pidfd_open(pid)
        self._add_reader(pidfd, self._child_exited, pid, pidfd, transp)

    def _child_exited(self, pid: int, pidfd: int, transp) -> None:
        self._remove_reader(pidfd)
        os.close(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
            returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            logger.warning("child process pid %d was reaped by someone else; "
                           "its exit status is unknown", pid)
            returncode = 255
        transp._process_exited(returncode)


def _tls_protocol() -> type:
    """``corenet.tls.SSLProtocol``, imported with the first TLS connection: a process that
    never speaks TLS through the loop does not carry the module and its extension."""
    from corenet import tls

    return tls.SSLProtocol


def _loop_check_callback(callback, method: str) -> None:
    if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")


def _check_signal(sig) -> None:
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")


def _check_sendfile_params(sock, file, offset, count) -> None:
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


def _is_numeric_host(family: int, host) -> bool:
    if host is None or host == "":
        return True
    if isinstance(host, bytes):
        host = host.decode("idna")
    host = host.partition("%")[0]
    try:
        socket.inet_pton(family, host)
        return True
    except (OSError, ValueError):
        return False


def _numeric_port(port) -> int | None:
    """``port`` as asyncio's resolver reads it without getaddrinfo: None or empty is 0, a
    numeric string its number; None for a service name ("http"), which getaddrinfo resolves."""
    if port is None or port == "" or port == b"":
        return 0
    try:
        return int(port)
    except (TypeError, ValueError):
        return None


def _debug_mode_from_environment() -> bool:
    """asyncio's default for a new loop's debug mode: -X dev, or $PYTHONASYNCIODEBUG."""
    return sys.flags.dev_mode or (not sys.flags.ignore_environment
                                  and bool(os.environ.get("PYTHONASYNCIODEBUG")))


def _stop_when_done(fut) -> None:
    if not fut.cancelled():
        # Reading the exception marks it retrieved: run_until_complete's caller gets it.
        if isinstance(fut.exception(), (SystemExit, KeyboardInterrupt)):
            return  # it is already propagating out of run_forever()
    fut.get_loop().stop()


def _set_result_unless_done(fut, result) -> None:
    if not fut.done():
        fut.set_result(result)


def _set_exception_unless_done(fut, exc) -> None:
    if not fut.done():
        fut.set_exception(exc)


def new_event_loop(*, trigger: Trigger | None = None) -> Loop:
    """A new corenet loop; ``trigger`` is "edge" or "level" (default: ``$CORENET_TRIGGER``)."""
    return Loop(trigger=trigger)


# asyncio deprecates its event-loop policies from Python 3.14 (to go in 3.16): there
# corenet has no policy class, and install() says what to use instead.
POLICIES = sys.version_info < (3, 14)
_USE_INSTEAD = ("use corenet.run(main()), asyncio.Runner(loop_factory=corenet.new_event_loop) "
                "or asyncio.run(main(), loop_factory=corenet.new_event_loop)")

if sys.version_info < (3, 14):     # POLICIES, spelled so that type checkers follow it
    class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
        """The asyncio policy whose loops are corenet loops (``asyncio.set_event_loop_policy``);
        Python 3.13 and older only.

        It keeps the Unix policy's child-watcher API for code that calls it; corenet's loops
        do not need a watcher (they watch children through pidfds).
        """

        def __init__(self, *, trigger: Trigger | None = None) -> None:
            super().__init__()
            self._trigger = trigger

        def _loop_factory(self) -> Loop:
            return Loop(trigger=self._trigger)

    def install(*, trigger: Trigger | None = None) -> None:
        """Make corenet the loop that ``asyncio.new_event_loop()`` and friends create (sets
        corenet's event-loop policy; Python 3.13 and older)."""
        asyncio.set_event_loop_policy(EventLoopPolicy(trigger=trigger))
else:
    def install(*, trigger: Trigger | None = None) -> None:
        """Python 3.14 deprecates asyncio's event-loop policies: raises RuntimeError."""
        raise RuntimeError("corenet.install() sets an asyncio event-loop policy, which Python "
                           f"3.14 deprecates: {_USE_INSTEAD}")

    def __getattr__(name: str) -> Any:
        if name == "EventLoopPolicy":
            raise AttributeError("corenet has no EventLoopPolicy from Python 3.14, which "
                                 f"deprecates asyncio's event-loop policies: {_USE_INSTEAD}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

if sys.version_info < (3, 14):
    __all__.append("EventLoopPolicy")


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None,
        trigger: Trigger | None = None) -> T:
    """Like ``asyncio.run``, on a corenet loop."""
    with asyncio.Runner(debug=debug, loop_factory=lambda: Loop(trigger=trigger)) as runner:
        return runner.run(main)
