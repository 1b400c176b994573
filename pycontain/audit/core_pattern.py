"""A writable /proc/sys/kernel/core_pattern: a program the host runs as root, named from inside.

core_pattern is not namespaced: the container's file is the host's. A pattern beginning with
"|" names a program the *host's* kernel starts, as root, in the host's namespaces, whenever any
process anywhere dumps core (core(5)). Writing it needs no capability, only uid 0 and a
writable file. The full escape: the container writes `|/path/on/the/host/of/a/file/it/wrote`
(its overlay's upper directory, which /proc/self/mountinfo names as `upperdir=`), then crashes
a process of its own: the host runs the container's program, outside every namespace.

This demonstration stops before the first write. It opens the file for writing and writes
nothing (`: >> FILE`: open(2) with O_WRONLY|O_APPEND, no write(2)): the kernel checks the
permission at open, so an open that succeeds is the proof that the write would be accepted,
and the host's setting never changes. It also prints the upper directory the pattern would
name. Lesson 20 first ran the same open; this module is the attack's library form.

pycontain's defence: /proc/sys is bound onto itself read-only in the container's own mount
namespace (security.paths.READ_ONLY, `paths.make_read_only`), runc's readonlyPaths: the open
fails with EROFS. `--security-opt systempaths=unconfined` (Docker's name) or `--privileged`
leaves it writable.

See also: core(5) (piping core dumps to a program), proc(5) (/proc/sys), open(2) (EROFS);
lesson 20.
"""

from __future__ import annotations

from typing import Any

from pycontain import runtime
from pycontain.audit.outcome import Outcome
from pycontain.fs import rootfs

#: the file, as the container sees it
PATH = "/proc/sys/kernel/core_pattern"
#: the container's command: open for writing, write nothing; name the upper directory
SCRIPT = f"""
if (: >> {PATH}) 2>&1; then echo "opened {PATH} for writing"; fi
sed -n 's/.*upperdir=\\([^,]*\\).*/the host would run a program under \\1/p' /proc/self/mountinfo
"""


def attempt(*, weakened: bool, timeout_s: float = 20.0, **options: Any) -> Outcome:
    """Open core_pattern for writing (never write) in a container on the embedded rootfs,
    with an overlay, and `options` (pycontain.run's)."""
    result = runtime.run(["sh", "-c", SCRIPT], rootfs=rootfs.ensure(), overlay=True,
                         timeout_s=timeout_s, **options)
    said = " / ".join(line.strip() for line in result.stdout.splitlines() if line.strip())
    escaped = f"opened {PATH} for writing" in result.stdout
    return Outcome("core_pattern", weakened, escaped, said or result.stderr.strip())
