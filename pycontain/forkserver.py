"""The fork server: one lean interpreter, started once, that forks each container's first process.

A notebook's kernel may not fork (DESIGN, "The process model"), so every container used to
start a fresh interpreter of its own, and its start-up and imports were most of a container's
start. The fork server pays them once: a `python -I -S` started by the first `spawn()` of a
process, single-threaded, with `pycontain.init` and every module its steps may need already
imported. For each container it receives the two pipe ends init talks on, the three stdio
descriptors and the working directory over a socketpair (SCM_RIGHTS, unix(7)), with the caller's
environment, and makes the child with clone(2)'s CLONE_PARENT: init is then the *caller's*
child, exactly as the interpreter `subprocess` started was, so the caller waits for it, its
PDEATHSIG ties it to the caller, and the conversation on the pipes is the one it always was.
The child reports its own pid on the socket and closes it; the server answers only a failure.

It dies with its owner: PR_SET_PDEATHSIG, and EOF on its socket. `lab.leftovers()` lists a
server whose parent is no longer its owner (`settings.FORK_SERVER_TAG` in its argv), and
`pycontain cleanup` ends it. A server that dies before it forked costs the request nothing:
the caller starts another and asks again, once.

See also: clone(2) (CLONE_PARENT), unix(7) (SCM_RIGHTS), multiprocessing's forkserver,
Android's zygote; runc re-executes itself as `runc init`, crun forks a C helper.
"""

from __future__ import annotations

import marshal
import os
import sys

from pycontain import fresh_python, settings
from pycontain.errors import EXIT_RUNTIME_ERROR, ProcessError, from_wire, to_wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import subprocess
    from collections.abc import Callable, Sequence
    from typing import Any

_SERVE = "from pycontain.forkserver import serve;serve()"
#: the largest request: the caller's environment, marshalled
_MAX_REQUEST = 1 << 20
#: subprocess's values for stdin/stdout/stderr: a new pipe, the other stream, /dev/null
PIPE, STDOUT, DEVNULL = -1, -2, -3
_DIED = ("the fork server was killed or crashed twice in a row: `dmesg` says whether the kernel "
         "killed it; `pycontain cleanup` removes what is left")


class Server:
    """The caller's side: starts the server on first use and asks it for one child at a time.

    `target` is "module:function", the function the child calls with [SPEC_FD, REPORT_FD]
    (`pycontain.init:main`); `preload`, the modules the server imports before the first request.
    """

    def __init__(self, target: str, preload: Sequence[str] = ()) -> None:
        import threading

        self.target = target
        self.preload = tuple(preload)
        self.process: subprocess.Popen[bytes] | None = None
        self.socket: socket.socket | None = None
        self.owner = 0
        self._lock = threading.Lock()  # one request at a time on the one socket

    def fork(self, spec_r: int, report_w: int, stdio: tuple[int, int, int]) -> int:
        """A new child of this process that calls `target([spec_r, report_w])` with `stdio` as
        its fds 0, 1, 2; its pid."""
        request = marshal.dumps({"env": dict(os.environ), "ignored": ignored_signals()})
        # the working directory as a descriptor: one removed since (a test's tmp dir) still works
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return self._fork(request, [spec_r, report_w, *stdio, cwd])
        finally:
            os.close(cwd)

    def _fork(self, request: bytes, fds: list[int]) -> int:
        with self._lock:
            for _ in range(2):  # a second time only when the server died before it forked
                if self.process is None or self.owner != os.getpid() or \
                        self.process.poll() is not None:
                    self._start()
                reply = self._ask(request, fds)
                if reply is None:
                    self.stop()
                    continue
                if "error" in reply:
                    raise from_wire(reply["error"])
                pid: int = reply["pid"]
                return pid
        raise ProcessError("the fork server ended before it forked the container", hint=_DIED)

    def _ask(self, request: bytes, fds: list[int]) -> dict[str, Any] | None:
        import socket

        assert self.socket is not None
        try:
            socket.send_fds(self.socket, [request], fds)
            return self._receive()
        except (BrokenPipeError, ConnectionResetError):
            return None

    def _receive(self) -> dict[str, Any] | None:
        assert self.socket is not None
        data = self.socket.recv(_MAX_REQUEST)
        return marshal.loads(data) if data else None

    def _start(self) -> None:
        import socket
        import subprocess

        self.stop()  # a dead one, or one a fork of this process inherited: never shared
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            argv = fresh_python(_SERVE, settings.FORK_SERVER_TAG, str(os.getpid()),
                                str(theirs.fileno()), self.target, *self.preload)
            self.process = subprocess.Popen(argv, pass_fds=(theirs.fileno(),),
                                            stdin=subprocess.DEVNULL)
        self.socket, self.owner = ours, os.getpid()
        reply = self._receive()
        if reply is None or "error" in reply:
            self.stop()
            if reply is not None:
                raise from_wire(reply["error"])
            raise ProcessError("the fork server ended before it was ready", hint=_DIED)

    def stop(self) -> None:
        """End the server (EOF on its socket, then SIGKILL) and reap it; idempotent."""
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        if self.process is not None and self.owner == os.getpid():
            self.process.kill()
            self.process.wait()
        self.process = None


def stdio(stdin: Any, stdout: Any, stderr: Any) -> tuple[tuple[int, int, int], list[Any],
                                                          list[int]]:
    """The child's fds 0, 1, 2 for `subprocess`-style arguments (None, PIPE, DEVNULL, STDOUT,
    an fd, a file); our ends of the pipes as text files (stdin, stdout, stderr, or None); the
    fds to close once the child has them."""
    child: list[int] = []
    ours: list[Any] = []
    close: list[int] = []
    for number, value in enumerate((stdin, stdout, stderr)):
        mine = None
        if value is None:
            fd = number
        elif value == STDOUT and number == 2:
            fd = child[1]
        elif value == DEVNULL:
            fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            close.append(fd)
        elif value == PIPE:
            read, write = os.pipe2(os.O_CLOEXEC)
            fd, theirs = (read, write) if number == 0 else (write, read)
            close.append(fd)
            mine = open(theirs, "w" if number == 0 else "r")  # noqa: SIM115  (the caller's)
        elif isinstance(value, int) and value >= 0:
            fd = value
        elif hasattr(value, "fileno"):
            fd = value.fileno()
        else:
            raise ValueError(f"stdin, stdout and stderr take None, PIPE, DEVNULL, STDOUT "
                             f"(stderr only), a descriptor or a file; got {value!r}")
        child.append(fd)
        ours.append(mine)
    return (child[0], child[1], child[2]), ours, close


class Child:
    """The part of `subprocess.Popen` that `Container` and the lessons use, for a child the
    server forked: `pid`, `stdin`/`stdout`/`stderr` (text files, or None), `poll`, `wait`,
    `communicate`, `kill`, `returncode`."""

    def __init__(self, pid: int, streams: list[Any]) -> None:
        self.pid = pid
        self.stdin, self.stdout, self.stderr = streams
        self.returncode: int | None = None
        self._output: dict[int, list[bytes]] = {1: [], 2: []}

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and timeout is not None:  # wait on its pidfd, with poll(2)
            import select

            fd = os.pidfd_open(self.pid)
            try:
                if not select.select([fd], [], [], max(timeout, 0))[0]:
                    import subprocess

                    raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            finally:
                os.close(fd)
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Read stdout and stderr to their end, then wait: as Popen.communicate, text."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        if self.stdin is not None and not self.stdin.closed:
            self.stdin.close()
        files = {f.fileno(): (n, f) for n, f in ((1, self.stdout), (2, self.stderr))
                 if f is not None and not f.closed}
        if not files:  # the command's own stdio: nothing to read (select's import spared)
            self.wait(timeout)
            return (None, None)
        import select  # poll(2): the selectors module costs a command ~1.5 ms to import

        poller = select.poll()
        for fd in files:
            poller.register(fd, select.POLLIN)
        while files:
            left = None if deadline is None else deadline - time.monotonic()
            ready = poller.poll(None if left is None else max(left, 0) * 1000)
            if not ready and left is not None:
                import subprocess

                raise subprocess.TimeoutExpired([str(self.pid)], timeout or 0)
            for fd, _ in ready:
                data = os.read(fd, 1 << 15)
                if data:
                    self._output[files[fd][0]].append(data)
                else:  # its end (POLLHUP reads as b"")
                    poller.unregister(fd)
                    files.pop(fd)[1].close()
        self.wait(None if deadline is None else deadline - time.monotonic())
        return (self._text(1, self.stdout), self._text(2, self.stderr))

    def _text(self, number: int, stream: Any) -> str | None:
        if stream is None:
            return None
        text: str = b"".join(self._output[number]).decode(stream.encoding)
        return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as Popen

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, 9)


def leftover_servers() -> list[str]:
    """Fork servers whose parent is no longer the owner their argv names (its pid): the owner
    ended and the server outlived it. A live owner's server is not a leftover, and one whose
    owner has just ended is on its way out (PR_SET_PDEATHSIG): those still there a moment
    later are the leftovers."""
    import time

    found = _orphaned_servers()
    if found:
        time.sleep(0.2)
        found = [pid for pid in _orphaned_servers() if pid in found]
    return found


def _orphaned_servers() -> list[str]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{name}/stat") as f:
                parent = int(f.read().rpartition(")")[2].split()[1])
        except OSError:
            continue  # ended meanwhile
        if not _is_server(argv):
            continue
        if argv[argv.index(settings.FORK_SERVER_TAG.encode()) + 1] != str(parent).encode():
            found.append(name)
    return found


def _is_server(argv: list[bytes]) -> bool:
    """Whether an argv is a fork server's (`Server._start`): `-c` runs `serve()`, then the tag
    and the owner; never another program that merely has the word in its arguments."""
    tag = settings.FORK_SERVER_TAG.encode()
    return b"-c" in argv and tag in argv and argv.index(b"-c") + 1 < argv.index(tag) and \
        argv[argv.index(b"-c") + 1].endswith(_SERVE.encode()) and \
        argv.index(tag) + 1 < len(argv)


def remove_server(pid: str) -> None:
    """End a leftover fork server (SIGKILL through a pidfd, if it is still one)."""
    import signal

    try:
        fd = os.pidfd_open(int(pid))
    except ProcessLookupError:
        return
    try:
        if pid in leftover_servers():  # the pidfd holds the process: checked, not a reused pid
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        os.close(fd)


def ignored_signals() -> list[int]:
    """The signals this process ignores (SIG_IGN), of those a container's command inherits as
    ignored across exec(2): a command run from a background job (`make test &`) ignores SIGINT.
    SIGPIPE and SIGXFSZ are left out: every Python ignores those itself, and exec'd commands get
    them back (subprocess's restore_signals, init's own)."""
    import signal

    return [int(sig) for sig in signal.valid_signals()
            if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGPIPE, signal.SIGXFSZ)
            and signal.getsignal(sig) == signal.SIG_IGN]


def _take_signals(ignored: list[int], server_ignored: list[int]) -> None:
    """Give the child the caller's ignored signals, not the server's: the server inherited
    its owner's of the moment it started, the container must have its caller's of now."""
    import signal

    for sig in set(ignored) | set(server_ignored):
        if sig in ignored:
            signal.signal(sig, signal.SIG_IGN)
        else:  # what a fresh interpreter would have had
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT
                          else signal.SIG_DFL)


# --- the server ------------------------------------------------------------------------------

def serve() -> None:
    """The server's process: argv is TAG OWNER SOCKET_FD TARGET [MODULE...] (`Server._start`)."""
    import importlib
    import socket

    from pycontain import faults, syscalls

    _, owner, fd, target, *preload = sys.argv[1:]
    syscalls.prctl(syscalls.PrctlOption.PR_SET_PDEATHSIG, 9)  # SIGKILL with the owner
    if os.getppid() != int(owner):  # it ended before prctl(2) took effect
        os._exit(EXIT_RUNTIME_ERROR)
    channel = socket.socket(fileno=int(fd))
    try:
        module, _, name = target.partition(":")
        entry = getattr(importlib.import_module(module), name)
        for module in preload:
            importlib.import_module(module)
    except Exception as exc:
        channel.send(marshal.dumps({"error": to_wire(exc)}))
        os._exit(EXIT_RUNTIME_ERROR)
    server_ignored = ignored_signals()
    channel.send(marshal.dumps({"ready": True}))
    while True:
        data, fds, _, _ = socket.recv_fds(channel, _MAX_REQUEST, 6)
        if not data:  # the owner closed its end, or ended
            os._exit(0)
        faults.point("forkserver:received")
        try:
            pid = syscalls.clone_parent()
        except Exception as exc:
            channel.send(marshal.dumps({"error": to_wire(exc)}))
            pid = -1
        if pid == 0:
            _child(channel, fds, marshal.loads(data), entry, server_ignored)
        for received in fds:
            os.close(received)
        faults.point("forkserver:forked")


def _child(channel: socket.socket, fds: list[int], request: dict[str, Any],
           entry: Callable[[list[str]], None], server_ignored: list[int]) -> None:
    """The new child: tell the caller its pid, take its stdio, environment and directory, run
    init. Never returns. A failure before init goes to the report pipe, as init's own would:
    EOF there alone would read as 'exec'd'."""
    spec_r, report_w, stdin, stdout, stderr, cwd = fds
    stdio_fds = (stdin, stdout, stderr)
    try:
        channel.send(marshal.dumps({"pid": os.getpid()}))
        channel.close()
        for number, fd in enumerate(stdio_fds):
            os.dup2(fd, number)  # inheritable: the command's own 0, 1, 2
        for fd in stdio_fds:
            if fd > 2:
                os.close(fd)
        _take_signals(request["ignored"], server_ignored)
        os.environ.clear()
        os.environ.update(request["env"])
        os.fchdir(cwd)
        os.close(cwd)
        entry([str(spec_r), str(report_w)])
    except BaseException as exc:
        try:
            data = marshal.dumps({"error": to_wire(exc)})
            os.write(report_w, len(data).to_bytes(4, "big") + data)  # init.Channel's framing
        except OSError:
            pass
    finally:
        os._exit(EXIT_RUNTIME_ERROR)
