"""`pycontain exec` served by the container's supervisor, over a socket in its run directory.

Joining a container (pycontain.nsenter) needs the container's recorded spec, its namespaces'
files, its cgroup and init's last steps (capabilities, seccomp): much of the library. A
`pycontain exec` that did all that itself would load that library at every start, as many
milliseconds as runc's whole `exec` takes. The supervisor has it loaded already, and waits
anyway; so it listens on `<run dir>/<id>/exec.sock`, and the command only asks:

1. the command connects and sends one message with the request (argv, env, cwd, user, tty)
   and, beside it, its stdin, stdout and stderr (or a pty's slave end, with -t) as file
   descriptors (SCM_RIGHTS, unix(7)): the exec'd process writes to the command's own output,
   nothing is copied through the supervisor;
2. the supervisor joins the container for it (`nsenter.start`: the exec'd process is then the
   supervisor's child) and answers `{"pid": N}`, or `{"error": ...}`, which the command raises
   as if it had failed itself;
3. the command forwards the signals it gets (`{"signal": 15}`), and when the process ends the
   supervisor, its parent, reaps it and answers `{"exit": status}`: the command's own.

A message is one SOCK_SEQPACKET packet of marshal.dumps() (both ends are the same
interpreter, as init's Channel; a packet keeps its boundaries, so there is no framing). The
socket is in the run directory, which only its owner may enter. conmon serves podman's exec in
the same way (`conmon --exec-attach`); containerd's shim serves `ctr task exec` over its
socket.

See also: unix(7) (SCM_RIGHTS, SOCK_SEQPACKET), pidfd_open(2), waitid(2), docker-exec(1).
"""

from __future__ import annotations

import _signal as signal  # without its enums: `pycontain exec` pays for them
import _socket
import marshal
import os

from pycontain import state
from pycontain.errors import ProcessError, SpecError, from_wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from pycontain.runtime import Container

#: the socket's name in the container's run directory
SOCKET = "exec.sock"
#: the largest message: argv and env of a request (a packet is read whole)
MAX_MESSAGE = 1 << 20
#: the signals the command forwards to the exec'd process, as `nsenter.wait` did
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def path(container_id: str) -> str:
    return os.path.join(state.directory(container_id), SOCKET)


def send(sock: _socket.socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    """One message, with `fds` beside it (the receiver gets its own copies)."""
    ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                  b"".join(fd.to_bytes(4, "little") for fd in fds))] if fds else []
    sock.sendmsg([marshal.dumps(message)], ancillary)


def receive(sock: _socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and the descriptors that came with it; (None, []) at EOF."""
    data, ancillary, _flags, _address = sock.recvmsg(MAX_MESSAGE, _socket.CMSG_SPACE(16 * 4),
                                                     _socket.MSG_CMSG_CLOEXEC)
    fds = [int.from_bytes(payload[i:i + 4], "little") for level, kind, payload in ancillary
           if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
           for i in range(0, len(payload) - len(payload) % 4, 4)]
    return (marshal.loads(data) if data else None), fds


# --- the command's side ----------------------------------------------------------------------

def connect(reference: str) -> _socket.socket:
    """A connection to the supervisor of the running container `reference` names, or the
    SpecError that says why there is none (not running, paused, unknown)."""
    container_id = state.find(reference)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        _at(container_id, sock.connect)
        return sock
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
    from pycontain import nsenter

    nsenter.target(reference)  # says why: exited, created, its supervisor gone
    raise SpecError("container", "a container started by this version of pycontain",
                    reference, hint="its supervisor serves no `exec`: run it again")


def request(sock: _socket.socket, reference: str, what: dict[str, Any],
            stdio: Sequence[int]) -> int:
    """Ask for `what` (argv, env, cwd, user, tty) with `stdio` as its stdin, stdout and stderr;
    return the exec'd process's pid (the host's) once it has exec'd. From here on the signals
    this process gets go to that process (`wait`): one sent before it exists waits in the
    socket until the supervisor can deliver it."""
    def forward(signum: int, _frame: object) -> None:
        try:
            send(sock, {"signal": signum})
        except OSError:  # the supervisor is gone: nothing left to signal
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    send(sock, {**what, "reference": reference}, stdio)
    answer = _answer(sock, reference, "it answered")
    if "error" in answer:
        raise from_wire(answer["error"])
    return int(answer["pid"])


def wait(sock: _socket.socket, reference: str) -> int:
    """Wait until the supervisor says the exec'd process ended (forwarding signals: `request`);
    its exit status as the shell shows it (128 + N when killed by signal N)."""
    while "exit" not in (answer := _answer(sock, reference, "the command did")):
        pass
    return int(answer["exit"])


def _answer(sock: _socket.socket, reference: str, before: str) -> dict[str, Any]:
    answer, _ = receive(sock)
    if answer is None:
        raise ProcessError(f"the supervisor of {reference!r} ended before {before}",
                           hint="the container ended meanwhile, or its supervisor was killed: "
                                "`pycontain ps -a` shows it")
    return answer


# --- the supervisor's side -------------------------------------------------------------------

class Service:
    """The supervisor's end: serve exec requests until the container's first process ends."""

    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        self.listener = _socket.socket(_socket.AF_UNIX,
                                       _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        try:
            os.unlink(path(container_id))  # a supervisor killed before could leave one
        except FileNotFoundError:
            pass
        _at(container_id, self.listener.bind)
        self.listener.listen(16)
        #: the exec'd processes that run, by pid, and the connection waiting for each (None:
        #: its command went away; the process runs on, as docker's does, and is only reaped)
        self.execs: dict[int, _socket.socket | None] = {}
        self.waiting: dict[int, _socket.socket] = {}  # those connections by fd
        self.poller: Any = None

    def serve(self, container: Container) -> None:
        """Answer requests until the container's first process has ended (not reaped: its
        `Container.wait` does that). Children that end meanwhile are reaped here: exec'd ones
        are reported to their command, others (orphans this subreaper inherited) only reaped."""
        import select

        from pycontain import nsenter

        nsenter.preload()  # the first exec pays no imports: the supervisor waits anyway
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        previous = signal.signal(signal.SIGCHLD, lambda _s, _f: None)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)  # SIGCHLD, SIGTERM: poll ends
        self.poller = select.poll()
        self.poller.register(wake_r, select.POLLIN)
        self.poller.register(self.listener.fileno(), select.POLLIN)
        try:
            while not self._reap(container):
                for fd, _events in self.poller.poll():
                    if fd == wake_r:
                        try:
                            while os.read(wake_r, 512):
                                pass
                        except BlockingIOError:
                            pass
                    elif fd == self.listener.fileno():
                        try:  # _accept: socket.accept's C half (socket.py costs an enum)
                            conn = _socket.socket(fileno=self.listener._accept()[0])  # type: ignore[attr-defined]
                        except OSError:  # the command went away before we took it
                            continue
                        if self._start(conn):
                            self.waiting[conn.fileno()] = conn
                            self.poller.register(conn.fileno(), select.POLLIN)
                    elif (waiting := self.waiting.get(fd)) is not None \
                            and not self._listen(waiting):
                        self._forget(waiting)
        finally:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, previous)
            os.close(wake_r)
            os.close(wake_w)
            self.listener.close()
            os.unlink(path(self.container_id))  # from now on: not running

    def finish(self) -> None:
        """After the container's end: the exec'd processes that remain are killed (in a PID
        namespace the kernel did that already), reaped, and reported to their commands."""
        for pid in list(self.execs):
            try:
                os.kill(pid, signal.SIGKILL)  # our unreaped child: the pid is still its
            except ProcessLookupError:
                pass
            _, status = os.waitpid(pid, 0)
            self._ended(pid, status)

    def _start(self, conn: _socket.socket) -> bool:
        """Start what `conn` asks for; whether it runs (the connection then waits for it)."""
        from pycontain import nsenter
        from pycontain.errors import to_wire

        fds: list[int] = []
        try:
            what, fds = receive(conn)
            if what is None:
                conn.close()
                return False
            # the command's word for the container, so that an error names what it was given
            record = nsenter.target(what.get("reference") or self.container_id)
            if record["id"] != self.container_id:  # a name or prefix taken over meanwhile
                raise SpecError("container", "a running container", what.get("reference"),
                                hint="it ended just now")
            wire = nsenter.prepare(record, what["argv"], env=what.get("env") or {},
                                   cwd=what.get("cwd"), user=what.get("user"))
            pid = nsenter.start(record, wire, _stdio(fds, bool(what.get("tty"))))
        except Exception as exc:  # told to the command, which raises it: the service goes on
            try:
                send(conn, {"error": to_wire(exc)})
            except OSError:
                pass
            conn.close()
            return False
        finally:
            for fd in fds:
                os.close(fd)
        try:
            send(conn, {"pid": pid})
        except OSError:  # the command is gone; its process runs on
            self.execs[pid] = None
            conn.close()
            return False
        self.execs[pid] = conn
        return True

    def _listen(self, conn: _socket.socket) -> bool:
        """A message from a waiting command: a signal to forward. False at its EOF."""
        try:
            message, fds = receive(conn)
        except OSError:
            message, fds = None, []
        for fd in fds:
            os.close(fd)
        if message is None:
            return False
        pid = next((p for p, c in self.execs.items() if c is conn), None)
        if pid is not None and isinstance(message.get("signal"), int):
            try:
                os.kill(pid, message["signal"])  # unreaped: still our child's pid
            except (OSError, ValueError):  # not a signal: the command's mistake, not ours
                pass
        return True

    def _forget(self, conn: _socket.socket) -> None:
        """The command went away (or was told the end): stop listening to it."""
        for pid, c in self.execs.items():
            if c is conn:
                self.execs[pid] = None
        if self.waiting.pop(conn.fileno(), None) is not None:
            self.poller.unregister(conn.fileno())
        conn.close()

    def _reap(self, container: Container) -> bool:
        """Reap every child that has ended but the container's first process; whether that
        one has ended (left for `Container.wait`; the SIGTERM handler's poll may have reaped it
        already)."""
        while container.process.returncode is None:
            try:
                ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return False
            if ended is None:
                return False
            if ended.si_pid == container.process.pid:  # with a PID namespace, init's outer
                return True                              # half: container.pid is its child
            _, status = os.waitpid(ended.si_pid, 0)
            if ended.si_pid in self.execs:
                self._ended(ended.si_pid, status)
        return True

    def _ended(self, pid: int, status: int) -> None:
        conn = self.execs.pop(pid)
        if conn is None:
            return
        code = os.waitstatus_to_exitcode(status)
        try:
            send(conn, {"exit": code if code >= 0 else 128 - code})
        except OSError:
            pass
        self._forget(conn)


def _at(container_id: str, act: Any) -> None:
    """`act` (bind or connect) on the socket's path through an O_PATH descriptor of the run
    directory: a sun_path holds 108 bytes, and a run directory under /tmp may be longer."""
    fd = os.open(state.directory(container_id), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        act(f"/proc/self/fd/{fd}/{SOCKET}")
    finally:
        os.close(fd)


def _stdio(fds: list[int], tty: bool) -> Any:
    """What the exec'd process does first: take the command's descriptors as 0, 1 and 2 (or,
    with a terminal, the pty's slave end as its controlling terminal too)."""
    from pycontain import terminal  # here: in the exec'd process the library is out of reach

    def take() -> None:
        if tty:
            terminal.take(fds[0])
            return
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
    return take
