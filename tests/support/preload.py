"""`python -m logpipe` for the tests without paying for a fresh interpreter each time.

Most of a short `logpipe` run is Python starting and importing pyarrow, DuckDB, numpy and typer
(~0.3 s of CPU; the work itself is a few milliseconds), and the suite starts about 600 of them.
So, like a preloader of a web framework's CLI (Rails' Spring, Android's zygote), one server
process per test session imports logpipe once; each `subprocess.Popen([sys.executable, "-m",
"logpipe", ...])` of a test is then served by a fork of it. The fork is a real process that the
test starts, signals, kills with SIGKILL and waits for by its pid, with the stdin, stdout, stderr,
cwd, environment and session the test asked for. It runs `logpipe/__main__.py` through runpy,
as `python -m` does, and ends as the interpreter would (threads joined, atexit, stdio flushed).

What a fork cannot reproduce falls back to a real exec, decided per call: a `preexec_fn`,
`pass_fds`, user/group/umask changes, an environment that changes how Python starts (any
`PYTHON*`, `LC_*` or `LANG` variable unlike the server's), a missing cwd, and every test marked
`fresh_interpreter` (those that look at what a fresh interpreter imports). `LOGPIPE_TEST_EXEC=1`
turns the preloader off: `make test`, and so CI, runs every process by exec, as users start
them; the preloaded run is the fast loop (`make check`).

Protocol, over a Unix socket per request: the client sends a length-prefixed JSON request with
the child's three standard fds attached (SCM_RIGHTS); the server forks and answers
`pid N\\n`, then `exit STATUS\\n` (the raw wait status) when it has reaped the child.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("!I")
# Variables read while Python starts (before any of our code runs): a child that changes one
# must be a real interpreter.
_START_UP_PREFIXES = ("PYTHON", "LC_", "LANG")


# ---------------------------------------------------------------------------------------------
# The server: `python -m tests.support.preload SOCKET`
# ---------------------------------------------------------------------------------------------


def _preload() -> None:
    """Import what any `logpipe` command imports (every command module, and what they load lazily)."""
    import importlib
    import pkgutil
    import runpy  # noqa: F401  (the children run through it)

    import logpipe

    for module in pkgutil.walk_packages(logpipe.__path__, "logpipe."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in ("pyarrow", "pyarrow.parquet", "pyarrow.compute", "pyarrow.json", "pyarrow.dataset", "duckdb"):
        importlib.import_module(name)


def _recv_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    while len(data) < _HEADER.size:
        data += conn.recv(1 << 16)
    (size,) = _HEADER.unpack_from(data)
    body = data[_HEADER.size :]
    while len(body) < size:
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise EOFError("request cut short")
        body += chunk
    return json.loads(body), list(fds)


def _std_streams() -> None:
    """New sys.stdin/stdout/stderr over fds 0-2, made as a starting interpreter makes them
    (line-buffered stdout only on a terminal; stderr always line-buffered, backslashreplace)."""
    encoding = sys.stdout.encoding
    errors = sys.stdout.errors
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding=encoding, errors=errors
    )
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
        encoding=encoding,
        errors=errors,
        line_buffering=os.isatty(1),
    )
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=True,
    )


def _run_child(request: dict[str, Any], fds: list[int], server_fds: Iterable[Any]) -> None:
    """In the fork: become the process the test asked for, run logpipe, exit as Python would."""
    code = 1
    try:
        for owned in server_fds:
            owned.close() if hasattr(owned, "close") else os.close(owned)
        if request["new_session"]:
            os.setsid()
        elif request["process_group"] >= 0:
            os.setpgid(0, request["process_group"])
        high = [os.dup(fd) if fd <= 2 else fd for fd in fds]
        for target, fd in enumerate(high):
            os.dup2(fd, target)
        for fd in set(high) | set(fds):
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import time

        time.tzset()
        _std_streams()
        code = _run_logpipe(request["argv"])
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _run_logpipe(argv: list[str]) -> int:
    """`python -m logpipe ARGV`, to its exit code (SystemExit handled as the interpreter does)."""
    import atexit
    import runpy
    import traceback

    sys.argv = ["-m", *argv]
    code = 0
    try:
        runpy.run_module("logpipe", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # join non-daemon threads, as at exit
    atexit._run_exitfuncs()
    return code & 0xFF


def serve(path: str) -> None:
    """Accept requests on `path` until stdin (a pipe from the test session) closes."""
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        for key, _events in selector.select():
            if key.data == "parent":
                return
            if key.data == "accept":
                conn, _ = listener.accept()
                try:
                    request, fds = _recv_request(conn)
                except (OSError, EOFError, ValueError):
                    conn.close()
                    continue
                owned = [selector, listener, conn, *(c for _, c in children.values()), *children]
                pid = os.fork()
                if pid == 0:
                    _run_child(request, fds, owned)
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (pid, conn)
                selector.register(pidfd, selectors.EVENT_READ, "child")
                conn.sendall(f"pid {pid}\n".encode())
            else:
                pidfd = key.fd
                pid, conn = children.pop(pidfd)
                selector.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):  # the test is gone; the child was reaped all the same
                    conn.sendall(f"exit {status}\n".encode())
                conn.close()


# ---------------------------------------------------------------------------------------------
# The client, in the test process: a patch of subprocess.Popen
# ---------------------------------------------------------------------------------------------


class _Server:
    """The session's preloaded server, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = ""
        self.env: dict[str, str] = {}

    @property
    def path(self) -> str:
        with self._lock:
            if self._proc is None:
                self._dir = tempfile.mkdtemp(prefix="logpipe-preload-")
                path = os.path.join(self._dir, "sock")
                self.env = dict(os.environ)
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.support.preload", path],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    cwd=Path(__file__).resolve().parents[2],
                    env=self.env,
                )
                assert self._proc.stdout is not None
                if self._proc.stdout.readline() != b"ready\n":
                    raise RuntimeError("the preloaded logpipe server did not start (see its stderr)")
            return os.path.join(self._dir, "sock")

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
                self._proc = None
                for name in os.listdir(self._dir):
                    os.unlink(os.path.join(self._dir, name))
                os.rmdir(self._dir)


_SERVER = _Server()
_ORIGINAL_EXECUTE_CHILD = subprocess.Popen._execute_child  # type: ignore[attr-defined]
_ORIGINAL_TRY_WAIT = subprocess.Popen._try_wait  # type: ignore[attr-defined]
_ORIGINAL_INTERNAL_POLL = subprocess.Popen._internal_poll  # type: ignore[attr-defined]
_STATE = {"enabled": False, "exec_only": False}


def _starts_like_the_server(env: Mapping[str, str] | None) -> bool:
    """Whether a child with `env` would start Python as the server did."""
    if env is None:
        env = os.environ
    server = _SERVER.env or os.environ

    def start_up(e: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in e.items() if k.startswith(_START_UP_PREFIXES)}

    return start_up(env) == start_up(server)


def _served(args: Any, executable: Any, shell: bool) -> list[str] | None:
    """The logpipe argv of `[sys.executable, "-m", "logpipe", ...]`, else None."""
    if shell or executable is not None or isinstance(args, (str, bytes, os.PathLike)):
        return None
    argv = [os.fsdecode(a) for a in args]
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1:3] == ["-m", "logpipe"]:
        return argv[3:]
    return None


def _execute_child(
    self: subprocess.Popen[Any],
    args: Any,
    executable: Any,
    preexec_fn: Any,
    close_fds: bool,
    pass_fds: tuple[int, ...],
    cwd: Any,
    env: Mapping[str, str] | None,
    startupinfo: Any,
    creationflags: int,
    shell: bool,
    p2cread: int,
    p2cwrite: int,
    c2pread: int,
    c2pwrite: int,
    errread: int,
    errwrite: int,
    restore_signals: bool,
    gid: Any,
    gids: Any,
    uid: Any,
    umask: int,
    start_new_session: bool,
    process_group: int,
) -> None:
    argv = _served(args, executable, shell)
    directory = os.fspath(cwd) if cwd is not None else os.getcwd()
    if (
        argv is None
        or not _STATE["enabled"]
        or _STATE["exec_only"]
        or preexec_fn is not None
        or pass_fds
        or gid is not None
        or gids is not None
        or uid is not None
        or umask >= 0
        or not os.path.isdir(directory)
        or not _starts_like_the_server(env)
    ):
        return _ORIGINAL_EXECUTE_CHILD(  # type: ignore[no-any-return]
            self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, startupinfo, creationflags, shell,
            p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite, restore_signals, gid, gids, uid, umask,
            start_new_session, process_group,
        )  # fmt: skip
    request = {
        "argv": argv,
        "cwd": directory,
        "env": dict(env if env is not None else os.environ),
        "new_session": bool(start_new_session),
        "process_group": process_group if process_group is not None else -1,
    }
    body = json.dumps(request).encode()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(_SERVER.path)
    fds = [p2cread if p2cread != -1 else 0, c2pwrite if c2pwrite != -1 else 1, errwrite if errwrite != -1 else 2]
    message = _HEADER.pack(len(body)) + body
    sent = socket.send_fds(conn, [message], fds)
    if sent < len(message):
        conn.sendall(message[sent:])
    link = _Link(conn)
    reply = link.line(block=True)
    if reply is None or not reply.startswith("pid "):
        conn.close()
        raise OSError(f"the preloaded logpipe server refused to start {argv}: {reply!r}")
    self.pid = int(reply.split()[1])
    self._child_created = True
    self._preloaded = link  # type: ignore[attr-defined]
    self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)  # type: ignore[attr-defined]


class _Link:
    """The connection of one served child: its `pid` line, then its `exit` line."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._pending = b""

    def line(self, block: bool) -> str | None:
        """The next line from the server, or None when none is there yet (`block` False)."""
        while b"\n" not in self._pending:
            if not block and not select.select([self._conn], [], [], 0)[0]:
                return None
            chunk = self._conn.recv(4096)
            if not chunk:
                raise OSError("the preloaded logpipe server went away")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()

    def exit_status(self, block: bool) -> int | None:
        line = self.line(block)
        if line is None:
            return None
        self._conn.close()
        return int(line.split()[1])


def _try_wait(self: subprocess.Popen[Any], wait_flags: int) -> tuple[int, int]:
    if not hasattr(self, "_preloaded"):
        return _ORIGINAL_TRY_WAIT(self, wait_flags)  # type: ignore[no-any-return]
    status = self._preloaded.exit_status(block=not wait_flags & os.WNOHANG)  # type: ignore[attr-defined]
    return (0, 0) if status is None else (self.pid, status)


def _internal_poll(self: subprocess.Popen[Any], _deadstate: Any = None, **kwargs: Any) -> int | None:
    if not hasattr(self, "_preloaded"):
        return _ORIGINAL_INTERNAL_POLL(self, _deadstate, **kwargs)  # type: ignore[no-any-return]
    if self.returncode is None and self._waitpid_lock.acquire(False):  # type: ignore[attr-defined]
        try:
            if self.returncode is None:
                status = self._preloaded.exit_status(block=False)  # type: ignore[attr-defined]
                if status is not None:
                    self._handle_exitstatus(status)  # type: ignore[attr-defined]
        except OSError:
            if _deadstate is not None:
                self.returncode = _deadstate
        finally:
            self._waitpid_lock.release()  # type: ignore[attr-defined]
    return self.returncode


def install() -> None:
    """Serve `python -m logpipe` children from the preloaded server from now on."""
    subprocess.Popen._execute_child = _execute_child  # type: ignore[attr-defined]
    subprocess.Popen._try_wait = _try_wait  # type: ignore[attr-defined]
    subprocess.Popen._internal_poll = _internal_poll  # type: ignore[attr-defined]
    _STATE["enabled"] = True


def uninstall() -> None:
    _STATE["enabled"] = False
    subprocess.Popen._execute_child = _ORIGINAL_EXECUTE_CHILD  # type: ignore[attr-defined]
    subprocess.Popen._try_wait = _ORIGINAL_TRY_WAIT  # type: ignore[attr-defined]
    subprocess.Popen._internal_poll = _ORIGINAL_INTERNAL_POLL  # type: ignore[attr-defined]
    _SERVER.stop()


def enabled() -> bool:
    """Whether `python -m logpipe` children are served by the preloaded server."""
    return bool(_STATE["enabled"])


def exec_only(on: bool) -> None:
    """While on, every child is a real exec (the test is marked `fresh_interpreter`)."""
    _STATE["exec_only"] = on


if __name__ == "__main__":
    serve(sys.argv[1])
