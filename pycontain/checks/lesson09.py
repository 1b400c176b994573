"""The checks of lesson 09, be root without being root.

The check gives the learner's function a command that creates a file in a host directory and
reports the ids it runs with, then looks at the file from the host: its owner is the kernel's
answer to "who was root in there?".
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable

from pycontain.checks import RETURN_RESULT, Passed, attempt, expect, output_lines
from pycontain.runtime import Result


def check_root_maps_to(run_as_mapped_root: Callable[[list[str], int], object]) -> Passed:
    """Call `run_as_mapped_root(argv, outside)` with a random outside uid; verify that the
    command ran as root inside, that the kernel's map says so, and that the file it created
    belongs to `outside` on the host."""
    outside = random.randrange(100, 4000) * 1000
    shared = f"/tmp/pycontain-check09-{os.urandom(4).hex()}"
    os.mkdir(shared)
    try:
        os.chmod(shared, 0o777)
        made = f"{shared}/made-inside"
        argv = ["sh", "-c", f"id -u; cat /proc/self/uid_map; touch {made}"]
        result = attempt(f"run_as_mapped_root(argv, {outside})", run_as_mapped_root,
                         list(argv), outside, returns=Result, instead=RETURN_RESULT)
        lines = output_lines(result, argv, 2, "pass argv on unchanged, and keep the host's "
                             "filesystem (no rootfs)")
        expect(lines[0] == "0", f"inside, the command ran as uid {lines[0]}, not 0: ask for the "
               "user namespace (user_namespace=True) so that pycontain maps root")
        mapping = lines[1].split()
        expect(mapping[:2] == ["0", str(outside)],
               f"the kernel's uid_map reads {lines[1].strip()!r}; map root to {outside}: "
               f"uid_map=[(0, {outside}, 65536)]")
        owner = os.stat(made).st_uid
        expect(owner == outside, f"the file the container made belongs to uid {owner} on the "
               f"host, not {outside}")
    finally:
        shutil.rmtree(shared)
    return Passed(f"root inside was uid {outside} outside: the kernel's uid_map said so, and the "
                  f"file it made belongs to {outside} on the host")
