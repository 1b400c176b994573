"""A terminal for a container's command: `-t` (a pseudo-terminal), `-i` (stdin kept open).

A program such as a shell asks isatty(3) whether it talks to a person, and then prompts, edits
lines, handles Ctrl-C. `-t` gives it a pseudo-terminal (pty(7)): openpty(3) makes a pair on the
host's devpts, the command gets the slave end as its stdin, stdout and stderr and as its
controlling terminal (setsid(2), then ioctl TIOCSCTTY), and `pycontain` copies between the
master end and its own terminal, which it puts in raw mode so that every key (Ctrl-C too)
reaches the container's line discipline, not ours. The window size is copied with
TIOCGWINSZ/TIOCSWINSZ at the start and on every SIGWINCH, so `top` or an editor inside fits.

The pty is the host's, not one of the container's devpts instance: the container only holds a
descriptor of it, as `docker exec -t` through containerd does with its console socket.

An OCI runtime does not copy anything itself (lesson 24): the caller (podman's conmon) passes a
unix socket's path as `--console-socket`, and the runtime sends it the master end (`send`,
SCM_RIGHTS, as runc does); conmon then relays it.

See also: pty(7), openpty(3), tty_ioctl(4) (TIOCSCTTY, TIOCGWINSZ, TIOCSWINSZ), termios(3),
docker-exec(1) (-i, -t), credentials(7) (sessions and controlling terminals).
"""

from __future__ import annotations

import _signal as signal  # without its enums: `pycontain exec` pays for them
import os

from pycontain import syscalls
from pycontain.errors import SpecError
from pycontain.syscalls import IoctlRequest

#: struct winsize: rows, columns, and two unused pixel sizes, each an unsigned short
WINSIZE_BYTES = 8


def require(interactive: bool, tty: bool, stdin_fd: int = 0) -> None:
    """Refuse `-i -t` when stdin is not a terminal, as Docker does, before anything is made."""
    if tty and interactive and not os.isatty(stdin_fd):
        raise SpecError("tty", "used with -i only when stdin is a terminal", "-t",
                        hint="the input device is not a TTY: leave out -t to pipe input into "
                             "the command, or run it from a terminal")


def open_pty() -> tuple[int, int]:
    """A new pty pair (master, slave), the slave as big as this process's terminal if any."""
    master, slave = os.openpty()
    copy_size(master)
    return master, slave


def copy_size(master: int) -> None:
    """Give the pty this process's window size (stdin's, else stdout's terminal)."""
    for fd in (0, 1):
        if os.isatty(fd):
            size = syscalls.ioctl(fd, IoctlRequest.TIOCGWINSZ, bytes(WINSIZE_BYTES))
            syscalls.ioctl(master, IoctlRequest.TIOCSWINSZ, size)
            return


def resize(master: int, rows: int, columns: int) -> None:
    """Give the pty `rows` x `columns` (an OCI process's consoleSize: height, width)."""
    size = rows.to_bytes(2, "little") + columns.to_bytes(2, "little") + bytes(4)
    syscalls.ioctl(master, IoctlRequest.TIOCSWINSZ, size)


def send(master: int, console_socket: str) -> None:
    """Hand the pty's master end to whoever listens on the unix socket `console_socket` (an
    OCI runtime's --console-socket: podman's conmon), as runc's utils.SendFd does."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(console_socket)
        sock.sendmsg([b"/dev/ptmx"],  # the master's name, as runc sends it (conmon ignores it)
                     [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, master.to_bytes(4, "little"))])
    except OSError as e:
        raise SpecError("--console-socket", "the path of a unix socket that is listening",
                        console_socket, hint=f"{e.strerror}: the caller (conmon) makes it "
                                             "and waits on it") from None
    finally:
        sock.close()


def take(slave: int) -> None:
    """In the command's process: a session of its own with the pty as its controlling
    terminal and as its stdin, stdout and stderr. Without `-i` it is still its stdin (so
    `stty size` works), only nothing is typed into it: `relay` forwards no input."""
    syscalls.setsid()
    syscalls.ioctl(slave, IoctlRequest.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def relay(master: int, interactive: bool) -> None:
    """Copy the pty's output to stdout, and with `interactive` stdin to the pty, until the
    command's side is closed; this terminal is in raw mode meanwhile, and SIGWINCH resizes."""
    import select
    import termios
    import tty

    saved = None
    if interactive and os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    previous = signal.signal(signal.SIGWINCH, lambda _s, _f: copy_size(master))
    watched = [master] + ([0] if interactive else [])
    try:
        while True:
            ready, _, _ = select.select(watched, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave closed it
                    data = b""
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:  # EOF on stdin: the terminal's end-of-file, as docker sends it
                    watched.remove(0)
                    os.write(master, b"\x04")
    finally:
        signal.signal(signal.SIGWINCH, previous)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
