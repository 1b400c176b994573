"""Watching a container being built: each step init takes, each system call it makes (lesson 02).

`pycontain run --trace -- CMD` (or `trace=True`) prints to the container's stderr, as it
happens, what init does, in the kernel's spelling, the way strace(1) would show it::

    step unshare_namespaces (lesson 02)
      unshare(CLONE_NEWUTS|CLONE_NEWPID) = 0  0.04 ms
    step apply_hostname (lesson 02)
      sethostname("box") = 0  0.01 ms

A step is shown only once it does something (a system call, a message to the parent): the ones
the spec does not ask for stay silent. `Tracer` wraps every function of `pycontain.syscalls`
(`KERNEL_CALLS`, the list the recording double uses too) around the kernel in use; nothing in
init prints, and nothing here is imported unless tracing is on.

See also: strace(1), and `pycontain.testing`, which records the same calls instead of making them.
"""

from __future__ import annotations

import inspect
import os
import signal
import time

from pycontain import syscalls
from pycontain.errors import errno_name
from pycontain.kernel_names import Constant

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

#: the signature of each kernel call, read once (after pivot_root `inspect` could not import more)
SIGNATURES = {name: inspect.signature(getattr(syscalls.Syscalls, name))
              for name in syscalls.KERNEL_CALLS}
#: calls that do not return when they succeed: shown before they are made
NO_RETURN = frozenset({"execve"})


def _flag_type(annotation: object) -> type[Constant] | None:
    """The flag or option type a parameter is annotated with (`MountFlag | int`), or None."""
    first = str(annotation).split("|")[0].strip()
    kind = getattr(syscalls, first, None)
    return kind if isinstance(kind, type) and issubclass(kind, Constant) else None


def arguments(call: str, args: Sequence[object], kwargs: dict[str, Any]) -> tuple[object, ...]:
    """Every argument of `call`, defaults filled in, flags as their flag type: the kernel's view.

    >>> arguments("mount", (None, "/", None, 16384 | (1 << 18)), {})
    (None, '/', None, <MountFlag.MS_REC|MS_PRIVATE: 278528>, None)
    """
    signature = SIGNATURES[call]
    bound = signature.bind(None, *args, **kwargs)
    bound.apply_defaults()
    values = []
    for name, value in list(bound.arguments.items())[1:]:  # not `self`
        kind = _flag_type(signature.parameters[name].annotation)
        values.append(kind(value) if kind is not None and isinstance(value, int) else value)
    return tuple(values)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render(value: object) -> str:
    """One argument in the kernel's spelling: strings quoted as in C, None as NULL, flags by name.

    >>> render("box"), render(None), render(b"1\\n"), render(["sh", "-c"]), render({"A": "1"})
    ('"box"', 'NULL', '"1\\\\n"', '["sh", "-c"]', '/* 1 var */')
    """
    if value is None:
        return "NULL"
    if isinstance(value, Constant):  # a flag or an option (kernel_names)
        return value.name
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, bytes):
        return _quoted(value.decode(errors="backslashreplace"))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, dict):  # an environment, shown as strace does
        return f"/* {len(value)} var{'s' if len(value) != 1 else ''} */"
    return repr(value)


def _signal_name(number: object) -> object:
    try:
        return signal.Signals(number).name  # type: ignore[arg-type]
    except ValueError:
        return number


def format_call(call: str, args: Sequence[object]) -> str:
    """`call(args)` as strace(1) prints it, signals and AT_FDCWD by name.

    >>> format_call("sethostname", ("box",))
    'sethostname("box")'
    >>> format_call("prctl", (syscalls.PrctlOption.PR_SET_PDEATHSIG, 9, 0))
    'prctl(PR_SET_PDEATHSIG, SIGKILL)'
    >>> format_call("capset", (0x20, 0x20, 0))
    'capset(0x0000000000000020, 0x0000000000000020, 0x0000000000000000)'
    >>> format_call("seccomp", (1, 0, bytes(16)))
    'seccomp(SECCOMP_SET_MODE_FILTER, 0, {len=2})'
    """
    if call == "prctl" and len(args) == 3 and args[2] == 0:  # as strace shows one-argument options
        args = args[:2]
    shown = [render(a) for a in args]
    if call == "sigaction" and len(args) == 2:
        handlers = {signal.SIG_DFL: "SIG_DFL", signal.SIG_IGN: "SIG_IGN"}
        shown = [str(_signal_name(args[0])), handlers.get(args[1], shown[1])]  # type: ignore[call-overload]
    elif call == "prctl" and args and args[0] == syscalls.PrctlOption.PR_SET_PDEATHSIG:
        shown[1] = str(_signal_name(args[1]))
    elif call == "capset":  # masks as /proc/<pid>/status shows them (CapEff, ...)
        shown = [f"0x{mask:016x}" for mask in args]  # type: ignore[str-format]
    elif call == "seccomp" and len(args) == 3 and isinstance(args[2], bytes):
        shown = ["SECCOMP_SET_MODE_FILTER" if args[0] == 1 else shown[0], shown[1],
                 f"{{len={len(args[2]) // 8}}}"]  # the program, as strace shows it
    elif call == "openat" and args and args[0] == syscalls.AT_FDCWD:
        shown[0] = "AT_FDCWD"
    return f"{call}({', '.join(shown)})"


def format_result(result: object, error: OSError | None, elapsed_ns: int) -> str:
    """` = result  time`: 0 for a call that returns nothing, -1 and the errno for a failure.

    >>> format_result(None, None, 40_000)
    ' = 0  0.04 ms'
    >>> format_result(None, OSError(1, "Operation not permitted"), 12_000)
    ' = -1 EPERM (Operation not permitted)  0.01 ms'
    """
    took = f"  {elapsed_ns / 1e6:.2f} ms"
    if error is not None:
        return f" = -1 {errno_name(error.errno or 0)} ({error.strerror}){took}"
    return f" = {0 if result is None else result}{took}"


def format_step(name: str, lesson: int) -> str:
    """The line that opens a step.

    >>> format_step("apply_hostname", 2)
    'step apply_hostname (lesson 02)'
    """
    return f"step {name} (lesson {lesson:02d})"


def to_stderr(line: str) -> None:
    """One line to fd 2 in one write(2): unbuffered, so a fork never prints it twice."""
    try:
        os.write(2, (line + "\n").encode(errors="backslashreplace"))
    except OSError:  # tracing never changes how the container ends
        pass


class Tracer(syscalls.Syscalls):
    """A kernel that makes each call through `inner` and writes a line about it."""

    def __init__(self, inner: syscalls.Syscalls, write: Callable[[str], None] = to_stderr
                 ) -> None:
        super().__init__()
        self.inner = inner
        self.out = write  # not `write`: that is a kernel call, traced like the others
        self.pending: str | None = None  # the step header, written before its first event
        for name in syscalls.KERNEL_CALLS:
            setattr(self, name, self._traced(name, getattr(inner, name)))

    def begin(self) -> None:
        """Write the step's header, if not yet: before its first call, so a fork writes it once."""
        if self.pending is not None:
            self.out(self.pending)
            self.pending = None

    def event(self, line: str) -> None:
        self.begin()
        self.out(line)

    def _traced(self, call: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def traced(*args: Any, **kwargs: Any) -> Any:
            shown = format_call(call, arguments(call, args, kwargs))
            self.begin()
            if call in NO_RETURN:  # on success nothing comes back to say so
                self.event(f"  {shown} = ?  (on success the command replaces init)")
            start = time.perf_counter_ns()
            try:
                result = function(*args, **kwargs)
            except OSError as e:
                self.event(f"  {shown}{format_result(None, e, time.perf_counter_ns() - start)}")
                raise
            self.event(f"  {shown}{format_result(result, None, time.perf_counter_ns() - start)}")
            return result

        return traced

    def steps(self, steps: Sequence[tuple[Callable[[Any, Any], None], int]]
              ) -> list[tuple[Callable[[Any, Any], None], int]]:
        """`steps`, each announcing itself (`step NAME (lesson NN)`) before its first event."""
        def announced(step: Callable[[Any, Any], None], lesson: int
                      ) -> Callable[[Any, Any], None]:
            def run(spec: Any, channel: Any) -> None:
                self.pending = format_step(step.__name__, lesson)
                step(spec, channel)
                self.pending = None

            return run

        return [(announced(step, lesson), lesson) for step, lesson in steps]

    def watch(self, channel: Any) -> None:
        """Show the messages init exchanges with the parent on `channel` (an `init.Channel`,
        a layer above: not imported) too."""
        send, receive = channel.send, channel.receive

        def traced_send(**message: Any) -> None:
            shown = "error" if "error" in message else message
            self.event(f"  -> parent {shown}")
            send(**message)

        def traced_receive() -> Any:
            message = receive()
            self.event(f"  <- parent {message}")
            return message

        channel.send = traced_send  # type: ignore[method-assign]
        channel.receive = traced_receive  # type: ignore[method-assign]


def start(steps: Sequence[tuple[Callable[[Any, Any], None], int]], channel: Any,
          write: Callable[[str], None] = to_stderr
          ) -> list[tuple[Callable[[Any, Any], None], int]]:
    """Trace from now on in this process: every kernel call, every message on `channel`, and
    each of `steps` (returned, wrapped) as it begins."""
    tracer = Tracer(syscalls.in_use(), write)
    syscalls.use(tracer)
    tracer.watch(channel)
    return tracer.steps(steps)
