"""Demo workloads that misbehave on purpose, bounded by construction (lessons 13-16, 18, 19).

A cgroup limit is best seen on a program that runs into it. These do, and each carries its
own hard caps, so that they end by themselves even with no cgroup around them (DESIGN §4):

- `hog`: allocates memory in steps (`step_bytes` every `every_s`) up to `max_bytes`, touching
  every page so the memory is real (a fresh anonymous page costs nothing until it is written:
  the kernel maps it on the first write, and only then charges it to the cgroup). It prints one
  line per step, then holds what it has for `hold_s` and exits 0. Under `memory.max` the OOM
  killer ends it with SIGKILL; under `memory.high` its steps come slower and slower.
- `fork_bomb`: every process forks again and again, but only while a ticket is left in a pipe
  that holds `max_processes - 1` tickets, so there are never more than `max_processes`; after
  `seconds` each process waits for its children and exits. Forks the kernel refuses (EAGAIN,
  what `pids.max` answers) are counted and retried. The first process prints the count.
- `counter`: adds one to a count every `every_s` and writes it over the last one in a file,
  which a `monitor.Monitor` rereads, for `seconds` (frozen time included); a count it missed
  while stopped is never caught up, so a pause shows as a flat stretch.
- `spread` (lesson 18): `workers` processes spin on the CPU for `seconds`, each noting which
  CPUs it ran on (/proc/self/stat); the first prints the CPU time they burned, the CPUs they
  were allowed (`Cpus_allowed_list`) and those they ran on.
- `burn`: spins on the CPU for `seconds` of wall time, optionally pinned to one CPU (two
  burners compete only when they share a CPU: this machine has more than one), and prints the
  CPU time it got: `burned 0.74 s of CPU in 3.00 s` (lesson 15).
- `requests`: a bursty service: every `every_s` a "request" that needs `work_ms` of CPU time
  arrives; it prints how long each took from arrival to done (`request 3 took 31.2 ms`), a
  latency the cpu.max period shows up in (lesson 15).
- `send` and `receive` (lesson 17): a TCP sender that sends for at most `seconds` and
  `max_bytes`, then waits for the receiver's close; a receiver that counts one connection's
  bytes per interval, `0.100 125000`, and in all from its first byte to its last.
- `write` (lesson 16): writes a file in blocks, with O_DIRECT or buffered then fsync(2), up to
  `size_bytes`, printing `T BYTES` after each block, so that a plot shows its rate under io.max.
- `thread_bomb` (lesson 13's stretch): threads instead of processes, up to `max_threads`, in one
  process: pids.max counts tasks, so it holds them too.
- `getpids` (lesson 21): installs a seccomp filter `stacked` times over (no_new_privs first,
  so no privilege is needed), then calls getpid(2) in a loop for `seconds` and prints how long
  each call took: every installed filter runs on every system call.

They run as `python -m pycontain.workloads hog --step 4M --every 0.1 --max 256M`,
`python -m pycontain.workloads fork-bomb --max 200 --seconds 5`, `… burn --seconds 3 --cpu 0`
and `… requests --count 12 --every 0.25 --work 30`; `hog_argv()`, `fork_bomb_argv()`,
`burn_argv()` and `requests_argv()` build a command that finds pycontain wherever the
container runs it.
They import only the standard library and `pycontain.sizes` (which imports nothing), so they
start fast.

See also: fork(2), mmap(2) (pages are allocated on first touch), pipe(7),
sched_setaffinity(2), clock_gettime(2) (CLOCK_PROCESS_CPUTIME_ID); cgroup-v2.rst.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import time

from pycontain import fresh_python, syscalls
from pycontain.sizes import parse_size

TYPE_CHECKING = False  # `typing` costs milliseconds at every start; only checkers need it
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

MiB = 1 << 20
#: the hog never asks for more than this, whatever it is told (a typo must not eat the machine)
HOG_CEILING_BYTES = 2 << 30
#: neither workload runs longer than this, in seconds
TIME_CEILING_S = 120.0
#: the fork bomb never makes more processes than this (its tickets must fit in one pipe, 64 KiB)
FORK_CEILING = 2000
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

_MAIN = "from pycontain.workloads import main;main()"


def mib(n_bytes: float) -> str:
    """
    >>> mib(4 * MiB), mib(1.5 * MiB)
    ('4 MiB', '1.5 MiB')
    """
    return f"{n_bytes / MiB:.4g} MiB"


def hog(step_bytes: int, every_s: float, max_bytes: int, *, hold_s: float = 0.0,
        out: TextIO = sys.stdout) -> int:
    """Allocate and touch `step_bytes` every `every_s` s up to `max_bytes`; hold; return 0.

    Each step prints `allocated N bytes = X MiB at T s`; the last line says the cap was reached.
    """
    if not 0 < step_bytes <= max_bytes <= HOG_CEILING_BYTES:
        raise ValueError(f"need 0 < step <= max <= {mib(HOG_CEILING_BYTES)}; got step "
                         f"{step_bytes} and max {max_bytes}")
    if not 0 <= every_s <= 10 or not 0 <= hold_s <= TIME_CEILING_S:
        raise ValueError(f"`every` must be 0-10 s and `hold` 0-{TIME_CEILING_S:g} s")
    start = time.monotonic()
    chunks = []
    total = 0
    while total < max_bytes and time.monotonic() - start < TIME_CEILING_S:
        size = min(step_bytes, max_bytes - total)
        chunk = bytearray(size)  # zeroed pages, mapped but not yet backed by memory
        chunk[::PAGE_BYTES] = b"\1" * len(range(0, size, PAGE_BYTES))  # touch each page
        chunks.append(chunk)
        total += size
        print(f"allocated {total} bytes = {mib(total)} at {time.monotonic() - start:.2f} s",
              file=out, flush=True)
        if total < max_bytes:
            time.sleep(every_s)
    print(f"reached the cap of {mib(max_bytes)}; holding it for {hold_s:g} s", file=out,
          flush=True)
    time.sleep(hold_s)
    return 0


def fork_bomb(max_processes: int, seconds: float, *, out: TextIO = sys.stdout) -> int:
    """Multiply for `seconds`, never beyond `max_processes` processes in all; return 0.

    Prints `processes: N of at most M; fork refused K times (EAGAIN)` while it runs and once
    at the end, from the first process (the others never print).
    """
    if not 1 < max_processes <= FORK_CEILING or not 0 < seconds <= TIME_CEILING_S:
        raise ValueError(f"need 1 < max <= {FORK_CEILING} and 0 < seconds <= "
                         f"{TIME_CEILING_S:g}; got {max_processes} and {seconds}")
    deadline = time.monotonic() + seconds
    tickets_r, tickets_w = os.pipe()
    reports_r, reports_w = os.pipe()
    os.set_blocking(tickets_r, False)
    os.write(tickets_w, b"t" * (max_processes - 1))  # this process is the first of them
    out.flush()
    os.read(tickets_r, 1)  # the seed's ticket
    seed = _fork_or_report(tickets_w, reports_w)
    if seed == 0:
        os.close(reports_r)
        _multiply(tickets_r, tickets_w, reports_w, deadline)  # never returns
    os.close(reports_w)  # the children hold their copies; EOF once they have all exited
    born = 1
    refused: dict[str, int] = {}
    shown = ""
    last_shown = 0.0
    while True:
        line = (f"processes: {born} of at most {max_processes}; fork refused "
                f"{sum(refused.values())} times" +
                (f" ({', '.join(sorted(refused))})" if refused else ""))
        now = time.monotonic()
        if line != shown and (now - last_shown >= 0.25 or now >= deadline):
            print(line, file=out, flush=True)
            shown, last_shown = line, now
        report = os.read(reports_r, 4096)
        if not report:
            break
        born += report.count(b"+")
        for code in re.findall(rb"!(\w+);", report):
            refused[code.decode()] = refused.get(code.decode(), 0) + 1
    if seed > 0:
        os.waitpid(seed, 0)
    print(f"done: {born} processes at most, fork refused {sum(refused.values())} times",
          file=out, flush=True)
    return 0


def thread_bomb(max_threads: int, seconds: float, *, out: TextIO = sys.stdout) -> int:
    """Start threads for `seconds`, never more than `max_threads` in all (this one included),
    each sleeping until the end; one process, many tasks (lesson 13's stretch). Return 0.

    Prints `done: N threads at most, thread start refused K times` at the end: a refused
    start is clone(2) failing with EAGAIN, which Python raises as RuntimeError.
    """
    import threading

    if not 1 < max_threads <= FORK_CEILING or not 0 < seconds <= TIME_CEILING_S:
        raise ValueError(f"need 1 < max <= {FORK_CEILING} and 0 < seconds <= "
                         f"{TIME_CEILING_S:g}; got {max_threads} and {seconds}")
    deadline = time.monotonic() + seconds
    done = threading.Event()
    started = refused = 0
    while time.monotonic() < deadline:
        if started < max_threads - 1:
            try:
                threading.Thread(target=done.wait, args=(seconds,), daemon=True).start()
                started += 1
            except RuntimeError:  # "can't start new thread": clone(2) said EAGAIN
                refused += 1
        time.sleep(0.005)
    done.set()
    print(f"done: {started + 1} threads at most, thread start refused {refused} times",
          file=out, flush=True)
    return 0


def _fork_or_report(tickets_w: int, reports_w: int) -> int:
    """fork(2); in the child report b"+"; on failure report b"!ERRNO;", give the ticket back
    and return -1."""
    try:
        pid = syscalls.fork()
    except OSError as e:  # a SyscallError: EAGAIN at pids.max
        os.write(reports_w, b"!" + errno.errorcode.get(e.errno or 0, "E?").encode() + b";")
        os.write(tickets_w, b"t")
        return -1
    if pid == 0:
        os.write(reports_w, b"+")
    return pid


def _multiply(tickets_r: int, tickets_w: int, reports_w: int, deadline: float) -> None:
    """The body of every bomb process: fork while tickets last, then wait out the deadline."""
    children: list[int] = []
    try:
        while time.monotonic() < deadline:
            try:
                os.read(tickets_r, 1)
            except BlockingIOError:  # no ticket left: the cap is reached; others may give back
                time.sleep(0.02)
                continue
            pid = _fork_or_report(tickets_w, reports_w)
            if pid == 0:
                children = []  # a new bomb process: its parent's children are not its own
            elif pid > 0:
                children.append(pid)
            else:
                time.sleep(0.01)  # refused: try again, like a real bomb, but not in a hot loop
        for child in children:
            os.waitpid(child, 0)
    finally:
        os._exit(0)  # a forked child never returns into the caller's code


def counter(path: str, every_s: float, seconds: float) -> int:
    """Count 1, 2, 3, ... every `every_s` s for `seconds` s, each count written over the last
    at the start of the file `path` (one pwrite(2): a reader never sees half a number, and a
    longer number covers a shorter one); return 0."""
    if not 0 < every_s <= 10 or not 0 < seconds <= TIME_CEILING_S:
        raise ValueError(f"need 0 < every <= 10 and 0 < seconds <= {TIME_CEILING_S:g}; got "
                         f"{every_s} and {seconds}")
    deadline = time.monotonic() + seconds
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        count = 0
        while time.monotonic() < deadline:
            count += 1
            os.pwrite(fd, f"{count}\n".encode(), 0)
            time.sleep(every_s)  # after each count, not to a schedule: no catching up
    finally:
        os.close(fd)
    return 0


def counter_argv(path: str, every_s: float = 0.01, seconds: float = 30.0) -> list[str]:
    """The command that runs `counter` in a container (no rootfs: it needs the host's Python)."""
    return fresh_python(_MAIN, "counter", path, "--every", str(every_s),
                        "--seconds", str(seconds))


#: the spreading burner never starts more workers than this
SPREAD_WORKERS_CEILING = 16


def spread(workers: int, seconds: float, *, out: TextIO = sys.stdout) -> int:
    """Spin `workers` processes for `seconds`; print what they burned, and where; return 0.

    Prints `burned C CPU-s in W s with N workers; allowed CPUs A; ran on CPUs R`.
    """
    from pycontain import procfs

    if not 0 < workers <= SPREAD_WORKERS_CEILING or not 0 < seconds <= TIME_CEILING_S:
        raise ValueError(f"need 0 < workers <= {SPREAD_WORKERS_CEILING} and 0 < seconds <= "
                         f"{TIME_CEILING_S:g}; got {workers} and {seconds}")
    with open("/proc/self/status") as f:
        allowed = procfs.parse_status(f.read()).get("Cpus_allowed_list", "?")
    start = time.monotonic()
    reports_r, reports_w = os.pipe()
    out.flush()
    children = []
    for _ in range(workers):
        pid = syscalls.fork()
        if pid == 0:  # a worker: spin, and look where it runs every 10 ms or so
            seen = set()
            try:
                with open("/proc/self/stat") as stat:
                    while time.monotonic() - start < seconds:
                        spin_until = time.monotonic() + 0.01
                        while time.monotonic() < spin_until:
                            pass
                        seen.add(procfs.processor(stat.read()))
                        stat.seek(0)
                os.write(reports_w, (",".join(map(str, sorted(seen))) + ";").encode())
            finally:
                os._exit(0)
        children.append(pid)
    os.close(reports_w)
    reports = b""
    while chunk := os.read(reports_r, 4096):
        reports += chunk
    for pid in children:
        os.waitpid(pid, 0)
    wall = time.monotonic() - start
    times = os.times()
    ran = {int(c) for report in reports.decode().split(";") for c in report.split(",") if c}
    ran_on = ",".join(map(str, sorted(ran))) or "?"
    print(f"burned {times.children_user + times.children_system:.2f} CPU-s in {wall:.2f} s with "
          f"{workers} workers; allowed CPUs {allowed}; ran on CPUs {ran_on}", file=out, flush=True)
    return 0


def burn(seconds: float, *, cpu: int | None = None, gated: bool = False,
         out: TextIO = sys.stdout) -> int:
    """Spin for `seconds` of wall time (on CPU `cpu` only, if given); print the CPU time got.

    `gated`: first wait (at most TIME_CEILING_S) for SIGUSR1, so that burners started one
    after the other begin to compete at the same moment: the caller sends it once each one
    waits, which it can see in /proc/<pid>/status (SIGUSR1 caught, `SigCgt`). The line reads
    `burned C s of CPU in W s` (C: this process's CPU clock, W: wall time).
    """
    if not 0 < seconds <= TIME_CEILING_S:
        raise ValueError(f"need 0 < seconds <= {TIME_CEILING_S:g}; got {seconds}")
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if gated:
        import signal

        # blocked first, the signal waits for sigtimedwait whenever it comes; then a handler,
        # since a PID namespace's init gets no signal from outside that it does not handle
        # (pid_namespaces(7)), and which is what the caller waits to see (`SigCgt`)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGUSR1, lambda *_: None)
        if signal.sigtimedwait({signal.SIGUSR1}, TIME_CEILING_S) is None:
            print("never told to start (SIGUSR1)", file=out, flush=True)
            return 1
    start, cpu_start = time.monotonic(), time.process_time()
    deadline = start + seconds
    while time.monotonic() < deadline:
        pass
    print(f"burned {time.process_time() - cpu_start:.3f} s of CPU in "
          f"{time.monotonic() - start:.3f} s", file=out, flush=True)
    return 0


def requests(count: int, every_s: float, work_ms: float, *, out: TextIO = sys.stdout) -> int:
    """Serve `count` requests arriving every `every_s` s, each `work_ms` ms of CPU; print each
    one's latency (arrival to done), `request N took X ms`, then the CPU share used."""
    if not 0 < count <= 1000 or not 0 < every_s <= 10 or not 0 < work_ms <= 1000 or (
            count * every_s > TIME_CEILING_S):
        raise ValueError(f"need 0 < count <= 1000, 0 < every <= 10 s, 0 < work <= 1000 ms, and "
                         f"count x every <= {TIME_CEILING_S:g} s")
    start, cpu_start = time.monotonic(), time.process_time()
    for n in range(count):
        arrival = start + n * every_s
        time.sleep(max(0.0, arrival - time.monotonic()))
        arrived = max(arrival, time.monotonic())
        needed = time.process_time() + work_ms / 1000
        while time.process_time() < needed:
            pass
        print(f"request {n} took {(time.monotonic() - arrived) * 1000:.1f} ms", file=out,
              flush=True)
    wall = time.monotonic() - start
    print(f"used {100 * (time.process_time() - cpu_start) / wall:.1f} % of a CPU in {wall:.2f} s",
          file=out, flush=True)
    return 0


def hog_argv(step: str | int = "4M", every_s: float = 0.1, max_size: str | int = "256M",
             hold_s: float = 0.0) -> list[str]:
    """The command that runs `hog` in a container (no rootfs: it needs the host's Python)."""
    return fresh_python(_MAIN, "hog", "--step", str(step), "--every", str(every_s),
                        "--max", str(max_size), "--hold", str(hold_s))


def fork_bomb_argv(max_processes: int = 200, seconds: float = 5.0) -> list[str]:
    """The command that runs `fork_bomb` in a container (no rootfs: it needs the host's Python)."""
    return fresh_python(_MAIN, "fork-bomb", "--max", str(max_processes),
                        "--seconds", str(seconds))


def thread_bomb_argv(max_threads: int = 200, seconds: float = 5.0) -> list[str]:
    """The command that runs `thread_bomb` in a container (no rootfs: the host's Python)."""
    return fresh_python(_MAIN, "thread-bomb", "--max", str(max_threads),
                        "--seconds", str(seconds))


def spread_argv(workers: int = 2, seconds: float = 2.0) -> list[str]:
    """The command that runs `spread` in a container (no rootfs: it needs the host's Python)."""
    return fresh_python(_MAIN, "spread", "--workers", str(workers), "--seconds", str(seconds))


def spread_report(stdout: str) -> dict[str, object] | None:
    """What a burner printed: CPU seconds, wall seconds, workers, CPUs allowed and ran on.

    >>> spread_report("burned 1.98 CPU-s in 2.00 s with 2 workers; allowed CPUs 1; "
    ...               "ran on CPUs 1\\n")
    {'cpu_s': 1.98, 'wall_s': 2.0, 'workers': 2, 'allowed': '1', 'ran_on': (1,)}
    """
    m = re.search(r"^burned ([\d.]+) CPU-s in ([\d.]+) s with (\d+) workers; allowed CPUs "
                  r"(\S+); ran on CPUs (\S+)$", stdout, re.MULTILINE)
    if m is None:
        return None
    return {"cpu_s": float(m[1]), "wall_s": float(m[2]), "workers": int(m[3]), "allowed": m[4],
            "ran_on": tuple(int(c) for c in m[5].split(",") if c.isdigit())}


def burn_argv(seconds: float = 3.0, cpu: int | None = None, *, gated: bool = False
              ) -> list[str]:
    """The command that runs `burn` in a container (no rootfs: it needs the host's Python)."""
    pin = [] if cpu is None else ["--cpu", str(cpu)]
    return fresh_python(_MAIN, "burn", "--seconds", str(seconds), *pin,
                        *(["--gated"] if gated else []))


def requests_argv(count: int = 12, every_s: float = 0.25, work_ms: float = 30.0) -> list[str]:
    """The command that runs `requests` in a container (no rootfs: it needs the host's Python)."""
    return fresh_python(_MAIN, "requests", "--count", str(count), "--every", str(every_s),
                        "--work", str(work_ms))


def _line(pattern: str, stdout: str, what: str) -> re.Match[str]:
    """The line of `stdout` that `pattern` matches, or a ValueError naming the `what …` line
    that is missing: each workload ends by saying what it did, and the parsers read that."""
    found = re.search(pattern, stdout, re.MULTILINE)
    if found is None:
        raise ValueError(f"no `{what} …` line in {stdout!r}")
    return found


def _time_and_bytes(stdout: str) -> list[tuple[float, int]]:
    """(seconds, bytes) from each `T BYTES` line (the writer's and the receiver's progress)."""
    return [(float(m[1]), int(m[2]))
            for m in re.finditer(r"^([\d.]+) (\d+)$", stdout, re.MULTILINE)]


def burned(stdout: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) from a burner's line.

    >>> burned("burned 0.742 s of CPU in 3.001 s\\n")
    (0.742, 3.001)
    """
    found = _line(r"^burned ([\d.]+) s of CPU in ([\d.]+) s$", stdout, "burned")
    return float(found[1]), float(found[2])


def latencies_ms(stdout: str) -> list[float]:
    """Each request's latency, in ms, from what `requests` printed.

    >>> latencies_ms("request 0 took 30.2 ms\\nrequest 1 took 101.5 ms\\n")
    [30.2, 101.5]
    """
    return [float(m[1]) for m in re.finditer(r"^request \d+ took ([\d.]+) ms$", stdout,
                                             re.MULTILINE)]


def used_percent(stdout: str) -> float:
    """The average CPU use `requests` reported, in % of one CPU.

    >>> used_percent("request 0 took 30.2 ms\\nused 12.5 % of a CPU in 2.80 s\\n")
    12.5
    """
    found = _line(r"^used ([\d.]+) % of a CPU", stdout, "used")
    return float(found[1])


def allocated(stdout: str) -> list[tuple[float, int]]:
    """(seconds, bytes) from each `allocated …` line a hog printed.

    >>> allocated("allocated 4194304 bytes = 4 MiB at 0.00 s\\n"
    ...           "allocated 8388608 bytes = 8 MiB at 0.10 s\\n")
    [(0.0, 4194304), (0.1, 8388608)]
    """
    return [(float(m[2]), int(m[1]))
            for m in re.finditer(r"^allocated (\d+) bytes = \S+ MiB at ([\d.]+) s$", stdout,
                                 re.MULTILINE)]


# ---- lesson 17: a bounded TCP sender and receiver, to measure a shaped link -----------------

#: the sender never sends more than this, whatever it is told
SEND_CEILING_BYTES = 1 << 30
#: bytes per send(2) and recv(2)
BLOCK_BYTES = 1 << 16
#: the sender's send buffer: small, so that what it has sent has nearly all left the host too
SEND_BUFFER_BYTES = 1 << 17


def send(host: str, port: int, seconds: float, max_bytes: int, *,
         out: TextIO = sys.stdout) -> int:
    """Connect to `host`:`port` and send for `seconds` or `max_bytes`, whichever ends first;
    then shut down writing and wait for the receiver's close before exiting, since a
    container's end of the connection goes with its namespace, and so would what its send
    buffer still holds. Prints `sent N bytes in T s`; returns 0."""
    import socket

    if not 0 < seconds <= TIME_CEILING_S or not 0 < max_bytes <= SEND_CEILING_BYTES:
        raise ValueError(f"need 0 < seconds <= {TIME_CEILING_S:g} and 0 < max <= "
                         f"{mib(SEND_CEILING_BYTES)}; got {seconds} and {max_bytes}")
    conn = socket.socket()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    conn.settimeout(30)
    conn.connect((host, port))
    block, sent = b"x" * BLOCK_BYTES, 0
    start = time.monotonic()
    while time.monotonic() - start < seconds and sent < max_bytes:
        sent += conn.send(block[:max_bytes - sent])
    conn.shutdown(socket.SHUT_WR)
    conn.recv(1)  # b"": the receiver has read everything and closed
    conn.close()
    print(f"sent {sent} bytes in {time.monotonic() - start:.3f} s", file=out, flush=True)
    return 0


def receive(port: int, every_s: float, seconds: float, *, hold: bool = False,
            out: TextIO = sys.stdout, told: TextIO = sys.stdin) -> int:
    """Listen on `port` (0: any free one; it prints `listening on PORT`), accept one connection
    and count its bytes, for `seconds` at most: every `every_s` from its first byte a line
    `ELAPSED_S BYTES` (the bytes of that interval; the last interval ends at the last byte),
    then `received N bytes in T s`, first byte to last, the time a rate is counted over.
    With `hold`, the connection stays open after that line until `told` (stdin) ends: the
    sender waits for the close, so its container, and its veth, are there until then.
    Returns 0, or 1 when no one connected within `seconds`."""
    import socket

    if not 0 < every_s <= 10 or not 0 < seconds <= TIME_CEILING_S:
        raise ValueError(f"need 0 < every <= 10 and 0 < seconds <= {TIME_CEILING_S:g}; got "
                         f"{every_s} and {seconds}")
    deadline = time.monotonic() + seconds
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen()
        print(f"listening on {server.getsockname()[1]}", file=out, flush=True)
        server.settimeout(seconds)
        try:
            conn, _ = server.accept()
        except TimeoutError:
            print(f"no connection in {seconds:g} s", file=out, flush=True)
            return 1
    total = counted = 0
    first = last = mark = 0.0
    with conn:
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        while time.monotonic() < deadline and (chunk := conn.recv(BLOCK_BYTES)):
            now = time.monotonic()
            if not first:
                first, mark = now, now + every_s
            while now >= mark:  # the intervals that ended before this chunk came
                print(f"{mark - first:.3f} {counted}", file=out, flush=True)
                counted, mark = 0, mark + every_s
            last, total, counted = now, total + len(chunk), counted + len(chunk)
        if counted:
            print(f"{last - first:.3f} {counted}", file=out, flush=True)
        print(f"received {total} bytes in {last - first:.3f} s", file=out, flush=True)
        if hold:
            told.read()  # until EOF: the close that ends the sender waits for it
    return 0


def send_argv(host: str, port: int, seconds: float = 2.0, max_size: str | int = "256M"
              ) -> list[str]:
    """The command that runs `send` in a container (no rootfs: it needs the host's Python)."""
    return fresh_python(_MAIN, "send", host, str(port), "--seconds", str(seconds),
                        "--max", str(max_size))


def receive_argv(port: int = 0, every_s: float = 0.1, seconds: float = 30.0, *,
                 hold: bool = False) -> list[str]:
    """The command that runs `receive`, on the host or in a container (`hold`: see there)."""
    return fresh_python(_MAIN, "receive", "--port", str(port), "--every", str(every_s),
                        "--seconds", str(seconds), *(["--hold"] if hold else []))


def listening_port(line: str) -> int:
    """The port from the receiver's first line.

    >>> listening_port("listening on 40123\\n")
    40123
    """
    found = re.fullmatch(r"listening on (\d+)\s*", line)
    if found is None:
        raise ValueError(f"not a `listening on PORT` line: {line!r}")
    return int(found[1])


def intervals(stdout: str) -> list[tuple[float, int]]:
    """(seconds since the first byte at the interval's end, bytes in it) from what `receive`
    printed: the bytes per second are each one's bytes over the time since the one before.

    >>> intervals("listening on 1\\n0.100 125000\\n0.200 125000\\n0.250 6000\\n"
    ...           "received 256000 bytes in 0.250 s\\n")
    [(0.1, 125000), (0.2, 125000), (0.25, 6000)]
    """
    return _time_and_bytes(stdout)


# --- lesson 16: a writer, direct or buffered, that says how far it got -----------------------

#: the writer never writes more than this, whatever it is told (the lesson's disks are 64 MiB)
WRITE_CEILING_BYTES = 256 << 20


def write(path: str, size_bytes: int, *, direct: bool, fsync: bool = True,
          block_bytes: int = MiB, hold_s: float = 0.0, out: TextIO = sys.stdout) -> int:
    """Write `size_bytes` to the file `path` in blocks of `block_bytes`; return 0.

    `direct`: with O_DIRECT, each write(2) goes to the device before it returns, past the page
    cache (the buffer must be aligned: an anonymous mmap(2) is page-aligned); otherwise the
    writes land in the page cache, and with `fsync` one fsync(2) at the end waits until they
    are on the device (without it, the kernel writes them back later, by itself). After each
    block it prints `T BYTES` (seconds since the start, bytes written so far); at the end
    `wrote N bytes in T s (direct|buffered + fsync|buffered)`, T counting the fsync; then it
    sleeps `hold_s` (its cgroup stays, with the pages it dirtied). It stops writing after
    TIME_CEILING_S.
    """
    import mmap

    if not 0 < block_bytes <= size_bytes <= WRITE_CEILING_BYTES:
        raise ValueError(f"need 0 < block <= size <= {mib(WRITE_CEILING_BYTES)}; got block "
                         f"{block_bytes} and size {size_bytes}")
    if not 0 <= hold_s <= TIME_CEILING_S:
        raise ValueError(f"`hold` must be 0-{TIME_CEILING_S:g} s; got {hold_s}")
    if direct and (block_bytes % PAGE_BYTES or size_bytes % block_bytes):
        raise ValueError(f"O_DIRECT needs a block that is a multiple of {PAGE_BYTES} bytes and "
                         f"a size that is a multiple of the block; got block {block_bytes} and "
                         f"size {size_bytes}")
    buffer = mmap.mmap(-1, block_bytes)  # page-aligned, as O_DIRECT asks
    buffer.write(b"\xa5" * block_bytes)  # not zeros: nothing may guess them away
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | (os.O_DIRECT if direct else 0)
    fd = os.open(path, flags, 0o644)
    start = time.monotonic()
    written = 0
    try:
        while written < size_bytes and time.monotonic() - start < TIME_CEILING_S:
            written += os.write(fd, memoryview(buffer)[:min(block_bytes, size_bytes - written)])
            print(f"{time.monotonic() - start:.3f} {written}", file=out, flush=True)
        if fsync and not direct:
            os.fsync(fd)  # the dirty pages, written back and waited for
    finally:
        os.close(fd)
        buffer.close()
    how = "direct" if direct else "buffered + fsync" if fsync else "buffered"
    print(f"wrote {written} bytes in {time.monotonic() - start:.3f} s ({how})", file=out,
          flush=True)
    time.sleep(hold_s)
    return 0


def write_argv(path: str, size: str | int = "16M", *, direct: bool, fsync: bool = True,
               block: str | int = "1M", hold_s: float = 0.0) -> list[str]:
    """The command that runs `write` in a container (no rootfs: it needs the host's Python)."""
    return fresh_python(_MAIN, "write", path, "--size", str(size), "--block", str(block),
                        "--hold", str(hold_s), *(["--direct"] if direct else []),
                        *([] if fsync else ["--no-fsync"]))


def progress(stdout: str) -> list[tuple[float, int]]:
    """(seconds, bytes written so far) from each progress line of the writer.

    >>> progress("0.010 1048576\\n0.260 2097152\\nwrote 2097152 bytes in 0.300 s (direct)\\n")
    [(0.01, 1048576), (0.26, 2097152)]
    """
    return _time_and_bytes(stdout)


def received(stdout: str) -> tuple[int, float]:
    """(bytes, seconds from the first byte to the last) from what `receive` printed.

    >>> received("0.100 125000\\nreceived 125000 bytes in 0.100 s\\n")
    (125000, 0.1)
    """
    found = _line(r"^received (\d+) bytes in ([\d.]+) s$", stdout, "received")
    return int(found[1]), float(found[2])


def wrote(stdout: str) -> tuple[int, float]:
    """(bytes, seconds) from the writer's last line, fsync included.

    >>> wrote("0.010 1048576\\nwrote 1048576 bytes in 0.421 s (buffered + fsync)\\n")
    (1048576, 0.421)
    """
    found = _line(r"^wrote (\d+) bytes in ([\d.]+) s", stdout, "wrote")
    return int(found[1]), float(found[2])


# ---- lesson 21: what a stack of seccomp filters costs each system call ----------------------

#: the most filters `getpids` stacks (the kernel allows 32768 instructions along the stack)
STACK_CEILING = 64
#: seccomp(2)'s operation that installs a filter (<linux/seccomp.h>)
_SECCOMP_SET_MODE_FILTER = 1


def getpids(seconds: float, program: bytes = b"", stacked: int = 0, *,
            out: TextIO = sys.stdout) -> int:
    """Install the seccomp filter `program` (`struct sock_filter`s, as
    `security.seccomp.assemble` makes them) `stacked` times, then call getpid(2) for `seconds`;
    print `getpid: N calls in T s under F filters: X ns each` (F read back from /proc) and
    return 0. The filter should allow getpid, or the loop dies at its first call."""
    if not 0 < seconds <= TIME_CEILING_S or not 0 <= stacked <= STACK_CEILING:
        raise ValueError(f"need 0 < seconds <= {TIME_CEILING_S:g} and 0 <= stack <= "
                         f"{STACK_CEILING}; got {seconds} and {stacked}")
    if stacked and (not program or len(program) % 8):
        raise ValueError("a stack needs a filter: 8 bytes per instruction, at least one")
    if stacked:
        syscalls.prctl(syscalls.PrctlOption.PR_SET_NO_NEW_PRIVS, 1)  # no privilege needed then
    for _ in range(stacked):  # each call adds one more filter; none replaces another
        syscalls.seccomp(_SECCOMP_SET_MODE_FILTER, 0, program)
    with open("/proc/self/status") as f:
        found = re.search(r"^Seccomp_filters:\s+(\d+)", f.read(), re.MULTILINE)
    filters = int(found[1]) if found else stacked  # the field is new in Linux 5.9
    getpid, calls = os.getpid, 0
    start = time.perf_counter()
    deadline = start + seconds
    while (now := time.perf_counter()) < deadline:
        for _ in range(10_000):  # the clock is read once per 10 000 calls, not per call
            getpid()
        calls += 10_000
    print(f"getpid: {calls} calls in {now - start:.3f} s under {filters} filters: "
          f"{1e9 * (now - start) / calls:.1f} ns each", file=out, flush=True)
    return 0


def getpids_argv(seconds: float = 1.0, program: bytes = b"", stacked: int = 0) -> list[str]:
    """The command that runs `getpids` in a container (no rootfs: it needs the host's Python)."""
    return fresh_python(_MAIN, "getpids", "--seconds", str(seconds), "--stack", str(stacked),
                        *(["--filter", program.hex()] if program else []))


def getpid_cost(stdout: str) -> tuple[int, float]:
    """(filters, ns per call) from what `getpids` printed.

    >>> getpid_cost("getpid: 4000000 calls in 1.000 s under 10 filters: 250.0 ns each\\n")
    (10, 250.0)
    """
    found = _line(r"^getpid: \d+ calls in [\d.]+ s under (\d+) filters: ([\d.]+) ns each$",
                  stdout, "getpid:")
    return int(found[1]), float(found[2])


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pycontain.workloads",
                                     description="bounded workloads for the cgroup lessons")
    commands = parser.add_subparsers(dest="command", required=True)
    h = commands.add_parser("hog", help="allocate memory in steps, up to a cap")
    h.add_argument("--step", default="4M", help="bytes per step (4M)")
    h.add_argument("--every", type=float, default=0.1, help="seconds between steps (0.1)")
    h.add_argument("--max", default="256M", help="the cap, never exceeded (256M)")
    h.add_argument("--hold", type=float, default=0.0, help="seconds to hold the cap (0)")
    b = commands.add_parser("fork-bomb", help="fork and fork again, up to a cap")
    b.add_argument("--max", type=int, default=200, help="processes in all, never exceeded (200)")
    b.add_argument("--seconds", type=float, default=5.0, help="how long it lasts (5)")
    t = commands.add_parser("thread-bomb", help="start threads, up to a cap, in one process")
    t.add_argument("--max", type=int, default=200, help="threads in all, never exceeded (200)")
    t.add_argument("--seconds", type=float, default=5.0, help="how long it lasts (5)")
    c = commands.add_parser("counter", help="count every few ms into a file, for a while")
    c.add_argument("path", help="the file the count is written to")
    c.add_argument("--every", type=float, default=0.01, help="seconds between counts (0.01)")
    c.add_argument("--seconds", type=float, default=30.0, help="how long it lasts (30)")
    s = commands.add_parser("spread", help="spin on the CPU in several processes, and say where")
    s.add_argument("--workers", type=int, default=2, help="processes that spin (2)")
    s.add_argument("--seconds", type=float, default=2.0, help="how long they spin (2)")
    c = commands.add_parser("burn", help="spin on the CPU, pinned to one CPU if asked")
    c.add_argument("--seconds", type=float, default=3.0, help="wall time to spin (3)")
    c.add_argument("--cpu", type=int, default=None, help="the one CPU to run on (any)")
    c.add_argument("--gated", action="store_true", help="wait for SIGUSR1 before spinning")
    r = commands.add_parser("requests", help="a bursty loop of CPU-bound requests")
    r.add_argument("--count", type=int, default=12, help="requests (12)")
    r.add_argument("--every", type=float, default=0.25, help="seconds between arrivals (0.25)")
    r.add_argument("--work", type=float, default=30.0, help="ms of CPU per request (30)")
    t = commands.add_parser("send", help="send over TCP for a while, then wait for the close")
    t.add_argument("host", help="the receiver's address")
    t.add_argument("port", type=int, help="the receiver's port")
    t.add_argument("--seconds", type=float, default=2.0, help="how long it sends at most (2)")
    t.add_argument("--max", default="256M", help="how much it sends at most (256M)")
    v = commands.add_parser("receive", help="count what one TCP connection brings, per interval")
    v.add_argument("--port", type=int, default=0, help="the port to listen on (0: any)")
    v.add_argument("--every", type=float, default=0.1, help="seconds per interval (0.1)")
    v.add_argument("--seconds", type=float, default=30.0, help="how long it lasts at most (30)")
    v.add_argument("--hold", action="store_true",
                   help="keep the connection open after counting until stdin ends")
    w = commands.add_parser("write", help="write a file, direct or buffered, and say how fast")
    w.add_argument("path", help="the file to write (made or truncated)")
    w.add_argument("--size", default="16M", help="bytes in all, at most 256M (16M)")
    w.add_argument("--block", default="1M", help="bytes per write(2) (1M)")
    w.add_argument("--direct", action="store_true", help="O_DIRECT (else buffered, then fsync)")
    w.add_argument("--no-fsync", action="store_true", help="buffered: leave writeback to the "
                   "kernel")
    w.add_argument("--hold", type=float, default=0.0, help="seconds to wait at the end (0)")
    g = commands.add_parser("getpids", help="stack a seccomp filter, then time getpid(2)")
    g.add_argument("--seconds", type=float, default=1.0, help="how long it calls (1)")
    g.add_argument("--stack", type=int, default=0, help="how many times to install it (0)")
    g.add_argument("--filter", default="", help="the filter, in hex (struct sock_filter)")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            size, block = (int(parse_size(v, f"--{n}", unlimited=False))
                           for n, v in (("size", args.size), ("block", args.block)))
            code = write(args.path, size, direct=args.direct, fsync=not args.no_fsync,
                         block_bytes=block, hold_s=args.hold)
        elif args.command == "counter":
            code = counter(args.path, args.every, args.seconds)
        elif args.command == "hog":
            step, cap = (int(parse_size(v, f"--{n}", unlimited=False))
                         for n, v in (("step", args.step), ("max", args.max)))
            code = hog(step, args.every, cap, hold_s=args.hold)
        elif args.command == "spread":
            code = spread(args.workers, args.seconds)
        elif args.command == "burn":
            code = burn(args.seconds, cpu=args.cpu, gated=args.gated)
        elif args.command == "requests":
            code = requests(args.count, args.every, args.work)
        elif args.command == "send":
            code = send(args.host, args.port, args.seconds,
                        int(parse_size(args.max, "--max", unlimited=False)))
        elif args.command == "receive":
            code = receive(args.port, args.every, args.seconds, hold=args.hold)
        elif args.command == "thread-bomb":
            code = thread_bomb(args.max, args.seconds)
        elif args.command == "getpids":
            code = getpids(args.seconds, bytes.fromhex(args.filter), args.stack)
        else:
            code = fork_bomb(args.max, args.seconds)
    except ValueError as e:
        parser.error(str(e))
    sys.exit(code)


if __name__ == "__main__":
    main()
