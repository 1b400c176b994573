"""A leaked directory descriptor as the working directory (CVE-2024-21626, "Leaky Vessels").

runc 1.1.11 and older opened the host's /sys/fs/cgroup and let that descriptor reach `runc
init`, which then chdir(2)ed into the container's working directory *before* closing it. A
`WORKDIR /proc/self/fd/7` in an image made /proc/self/fd/7, a magic link to the host's
directory, the container's working directory: outside its root, so ".." climbs to the host's
"/", and the host's files are open to read and write. runc 1.1.12 fixed it twice over: every
descriptor is close-on-exec from init's start, and after chdir(2) init checks that the working
directory lies inside the root (getcwd(2) says "(unreachable)" otherwise).

pycontain's defences, the same two: `runtime.spawn` passes init only its two pipes
(`subprocess` closes the rest, and Python opens every descriptor O_CLOEXEC); and
`init.change_directory` checks, after chdir(2), that the directory is inside the root
(`rootfs.verify_cwd_inside_root`). `pycontain run` forks init from the command itself, so init
does hold the command's descriptors until its last step closes them (close_range(2)): the
check is what keeps one of them from becoming the working directory.

`attempt(marker, weakened=True)` plays the runtime bug: a runtime that leaks an O_PATH
descriptor of the marker's directory into init, and an init with the step as runc had it
(chdir(2), no check: `weak_init`). With `weakened=False` the same container is asked of
pycontain as it is, with the same working directory.

See also: chdir(2), getcwd(2), open(2) (O_PATH), close_range(2), proc(5) (/proc/pid/fd),
GHSA-xr7r-f8xq-vfvv (runc), CVE-2024-21626.
"""

from __future__ import annotations

import os
from typing import Any

from pycontain import fresh_python, runtime
from pycontain.audit.escape import Marker
from pycontain.audit.outcome import Outcome
from pycontain.errors import PycontainError
from pycontain.fs import rootfs

#: the container's command: read the marker from the working directory it was given
READ = ["sh", "-c", 'echo "cwd: $(pwd -P 2>&1)"; cat ./marker']


def weak_init() -> None:
    """init as runc had it before 1.1.12: the working directory taken without a check."""
    from pycontain import init, syscalls

    def change_directory(spec: Any, channel: Any) -> None:
        syscalls.chdir(spec["cwd"])

    init.STEPS = tuple((change_directory if step is init.change_directory else step, lesson)
                       for step, lesson in init.STEPS)
    init.main()


def attempt(marker: Marker, *, weakened: bool, checked: bool | None = None,
            timeout_s: float = 20.0, **options: Any) -> Outcome:
    """The attack on a container on the embedded rootfs with `options` (pycontain.run's);
    `weakened`: started by the leaking runtime, with runc's old init step unless `checked`
    (pycontain's init, which checks the working directory: the second defence alone)."""
    directory = os.path.dirname(marker.path)
    leaked = os.open(directory, os.O_PATH | os.O_DIRECTORY)  # O_CLOEXEC, as Python opens
    try:
        spec = runtime.Spec(READ, rootfs=rootfs.ensure(), cwd=f"/proc/self/fd/{leaked}",
                            **options)
        try:
            if weakened:
                container = runtime._start(spec, _leaking_start(leaked, bool(checked)), None,
                                           None, None)
            else:
                container = runtime.spawn(spec)
            result = container.wait(timeout_s)
        except PycontainError as e:
            return Outcome("leaky vessels", weakened, False, str(e).splitlines()[0])
    finally:
        os.close(leaked)
    read = result.stdout.splitlines()
    escaped = marker.secret in read
    return Outcome("leaky vessels", weakened, escaped,
                   " / ".join(read) if escaped else (result.stdout + result.stderr).strip())


def _leaking_start(leaked: int, checked: bool) -> Any:
    """How a buggy runtime starts init: the two pipes, and one descriptor too many; with
    runc's old init step, or pycontain's own init when `checked`."""
    import subprocess

    boot = ("from pycontain.init import main;main()" if checked else
            "from pycontain.audit.leaky_vessels import weak_init;weak_init()")

    def start(spec_r: int, spec_w: int, report_r: int, report_w: int) -> Any:
        return subprocess.Popen(
            fresh_python(boot, str(spec_r), str(report_w)),
            pass_fds=(spec_r, report_w, leaked), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    return start
