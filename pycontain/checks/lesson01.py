"""The checks of lesson 01, look at a process through /proc."""

from __future__ import annotations

import os
from collections.abc import Callable

from pycontain import procfs
from pycontain.checks import CheckFailed, Passed, expect
from pycontain.observe import probe


def check_same_namespace(same_namespace: Callable[[int, int, str], object]) -> Passed:
    """Compare `same_namespace(pid_a, pid_b, ns_type)` with the kernel, for every namespace type,
    on real process pairs: this process and a plain child (they share everything), and a child
    the check starts itself in new UTS and network namespaces with unshare(1)."""
    plain = probe.start(["sleep", "30"])
    boxed = probe.start(["unshare", "--uts", "--net", "sleep", "30"])
    try:
        me = os.getpid()
        pairs = [(me, plain.pid), (me, boxed.pid), (boxed.pid, plain.pid), (boxed.pid, boxed.pid)]
        asked = 0
        for a, b in pairs:
            truth = procfs.shared_namespaces(a, b)
            for ns_type in procfs.namespaces(a):
                try:
                    answer = same_namespace(a, b, ns_type)
                except Exception as e:
                    raise CheckFailed(
                        f"same_namespace({a}, {b}, {ns_type!r}) raised {type(e).__name__}: {e}. "
                        f"Read the links /proc/{a}/ns/{ns_type} and /proc/{b}/ns/{ns_type} "
                        "with os.readlink (or use procfs.namespace).") from e
                expect(isinstance(answer, bool),
                       f"same_namespace({a}, {b}, {ns_type!r}) returned {answer!r}: return True "
                       "or False, by comparing the two link targets such as 'uts:[4026531838]'")
                expected = ns_type in truth
                expect(answer == expected,
                       f"same_namespace({a}, {b}, {ns_type!r}) returned {answer}, but the kernel "
                       f"says {a} and {b} {'share' if expected else 'do not share'} their "
                       f"{ns_type} namespace ({procfs.namespace(a, ns_type)} vs "
                       f"{procfs.namespace(b, ns_type)}). Compare the inode numbers of the two "
                       "links, not the PIDs.")
                asked += 1
    finally:
        probe.stop(plain)
        probe.stop(boxed)
    return Passed(f"same_namespace agrees with the kernel on {asked} questions, including a "
                  "process in new UTS and network namespaces")
