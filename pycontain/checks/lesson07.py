"""The checks of lesson 07, isolate IPC.

The check looks at real IPC objects on both sides: it lists what the host's IPC namespace holds
before and after the learner's code runs, joins the container's IPC namespace with nsenter(1) to
list what is inside, and verifies that the learner's lab removes what was made on the host. It
recognises the usual wrong turns by what it finds: a container that ended (pycontain.run, or a
clean-up called at once instead of deferred), a container in the host's IPC namespace, the
"inside" objects made in this notebook (so on the host), a key or name used on both sides.

A learner's function that raises is cleaned up after as well: the containers it started are
stopped (`attempt`), its Lab closed, and the segments this process created since the check
began (their `cpid` in /proc/sysvipc/shm) and the new pycontain queues removed.

`check_pod`, the stretch: two containers sharing one IPC namespace that is not the host's, as
the containers of a Kubernetes pod do (`docker run --ipc container:NAME`).

The messages say what was found where and which section shows it, never the call to write.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pycontain import procfs, runtime
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.checks.exercise import exercise
from pycontain.lab import Lab
from pycontain.namespaces import ipc
from pycontain.runtime import Container


def _ours(view: ipc.IpcView) -> set[str]:
    return set(view.objects())


def _kinds(labels: set[str]) -> set[str]:
    return {label.split()[0] for label in labels}


def _count(labels: set[str], kind: str) -> int:
    return sum(1 for label in labels if label.startswith(f"{kind} "))


def _host_view() -> ipc.IpcView:
    [host] = ipc.run_in(None, "view")
    return host


def _segments_created_here(path: str = "/proc/sysvipc/shm") -> set[int]:
    """The shmids of the segments this process created (column `cpid` of /proc/sysvipc/shm)."""
    with open(path) as f:
        head, *rows = [line.split() for line in f if line.strip()]
    shmid, cpid = head.index("shmid"), head.index("cpid")
    return {int(r[shmid]) for r in rows if int(r[cpid]) == os.getpid()}


def _remove_on_host(labels: set[str], before: set[str]) -> None:
    """Remove the host objects named by `labels` that were not there `before`, segments only if
    this process created them (the check tidies up after a failed attempt, and must not touch
    what another notebook on this machine made meanwhile)."""
    host = _host_view()
    created_here = _segments_created_here()
    for segment in host.segments:
        if segment.label in labels - before and segment.shmid in created_here:
            ipc.remove_segment(segment.shmid)
    for name in host.queues:
        if f"mq {name}" in labels - before:
            ipc.remove_queue(name)


def _stop(*boxes: object) -> list[Container]:
    """Stop each box that is a container still running; the ones that were."""
    running = [b for b in boxes if isinstance(b, Container) and b.running]
    for box in running:
        box.kill()
        box.wait()
    return running


def _ended(box: Container, what: str) -> str:
    result = box.wait()
    said = result.stderr.strip()
    return (f"{what} had ended ({result.reason}{f': {said!r}' if said else ''}) when your "
            "function returned, and nothing can join a namespace whose last process is gone "
            "(the section \"Watch a namespace give its memory back\"). If a clean-up stopped "
            "it: practice.defer takes a function to call at close(), not what calling it now "
            "returns")


ISOLATION_HINTS = (
    "Three steps, all in the lesson: a container that stays alive in an IPC namespace of its "
    "own (\"Watch a namespace give its memory back\" starts one), objects made here, in this "
    "notebook (\"Make a segment and a queue on the host\"), and objects made from inside.",
    "A call made in this notebook makes its object in this notebook's namespace, the host's, "
    "whatever container runs. To make one inside, the making must happen in a process that "
    "joined the container's IPC namespace: which `ipc` function runs steps in another "
    "process's namespace?",
    "Register each clean-up right after making the thing it undoes, with practice.defer(f, "
    "'what it does'): f is a function called at close(), such as a lambda.",
)


@exercise(hints=ISOLATION_HINTS)
def check_isolated_both_ways(prove_isolation: Callable[[Lab], object]) -> Passed:
    """Call `prove_isolation(practice)` with a fresh Lab; it returns a running container.

    Then: the host holds a new segment and a new queue, the container's IPC namespace holds a
    segment and a queue of its own, neither side sees the other's, and `practice.close()` stops
    the container and removes what was made on the host.
    """
    before = _ours(_host_view())
    practice = Lab(check=False)
    box: object = None
    try:
        box = attempt("prove_isolation(practice)", prove_isolation, practice)
        made = _ours(_host_view()) - before
        _check_sides(box, made)
    except BaseException:
        practice.close()
        _stop(box)
        _remove_on_host(_ours(_host_view()), before)  # a failed attempt leaves nothing behind
        raise
    practice.close()
    return _check_closed(box, made, before)


def _check_sides(box: object, made: set[str]) -> None:
    expect(not isinstance(box, runtime.Result),
           f"prove_isolation returned {box!r}, the result of a container that has ended: the "
           "check looks inside the container's IPC namespace, which needs a container that "
           "still runs")
    expect(isinstance(box, Container),
           f"prove_isolation returned {box!r}: return the container, still running")
    assert isinstance(box, Container)
    if not box.running:
        raise CheckFailed(_ended(box, "the container"))
    expect(box.namespaces()["ipc"] != procfs.namespace("self", "ipc"),
           "the container is in this notebook's IPC namespace, the host's, so there is nothing "
           "to isolate: which namespaces did you give it? (the section \"Look from inside a "
           "container\")")
    [inside] = ipc.run_in(box.pid, "view")
    own = _ours(inside)
    for kind, name in (("shm", "segment"), ("mq", "queue")):
        expect(not (_count(made, kind) >= 2 and kind not in _kinds(own)),
               f"the host has {_count(made, kind)} new {name}s and the container none: the "
               f"{name} meant for inside was made in this notebook, so in the host's IPC "
               "namespace (the section \"Use a host id inside\" shows how little a container "
               "shares with it)")
    expect(_kinds(made) == {"shm", "mq"},
           f"on the host I found these new objects: {sorted(made) or 'none'}; the exercise "
           "wants one segment and one queue made in this notebook, on the host")
    expect(_kinds(own) == {"shm", "mq"},
           f"inside the container's IPC namespace I found {sorted(own) or 'nothing'}; the "
           "exercise wants a segment and a queue made there too, from inside")
    both = own & _ours(_host_view())
    expect(not both,
           f"{sorted(both)} appear on both sides: the same key or name twice. They may be two "
           "objects, one per namespace (\"Make the same key twice\"), but the check cannot tell "
           "them apart; use a fresh key and name on each side")


def _check_closed(box: object, made: set[str], before: set[str]) -> Passed:
    left = made & _ours(_host_view())
    still_running = bool(_stop(box))
    _remove_on_host(left, before)
    expect(not still_running,
           "practice.close() left the container running: nothing registered its end with "
           "practice.defer (this check stopped it for you)")
    expect(not left,
           f"practice.close() left {sorted(left)} on the host: IPC objects outlive the process "
           "that made them, so each needs its removal registered with practice.defer (this "
           "check removed them for you)")
    return Passed(f"the host's {', '.join(sorted(made))} stayed invisible inside the "
                  "container, the container's own objects stayed invisible to the host, and "
                  "practice.close() left nothing behind")


def _settled_namespaces(boxes: Any, timeout_s: float = 3.0
                        ) -> list[procfs.NamespaceId | None]:
    """The IPC namespaces of `boxes` once they agree, or as they are after `timeout_s`: a
    command such as nsenter(1) joins its namespace only after the container has exec'd it."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        spaces = [box.namespaces().get("ipc") for box in boxes]  # None: it has just ended
        if spaces[0] == spaces[1] or time.monotonic() > deadline \
                or not all(box.running for box in boxes):
            return spaces
        time.sleep(0.02)


POD_HINTS = (
    "Docker's `--ipc container:NAME` and a Kubernetes pod put a second container into the "
    "first one's IPC namespace. Which tool from this lesson enters a running process's "
    "namespace (it is how ipc.run_in reaches inside)?",
    "nsenter(1) can run the second container's command inside the first one's IPC namespace; "
    "it finds that namespace through /proc/<pid>. Which /proc does a container see, with a "
    "mount and PID namespace of its own, and without?",
)


@exercise(hints=POD_HINTS, stretch=True)
def check_pod(start_pod: Callable[[Lab], object]) -> Passed:
    """Stretch: `start_pod(practice)` returns two running containers in one IPC namespace, not
    the host's; a segment made from the first is seen from the second and not by the host, and
    `practice.close()` stops both."""
    practice = Lab(check=False)
    boxes: Any = None
    key = ipc.new_key()
    try:
        boxes = attempt("start_pod(practice)", start_pod, practice)
        expect(isinstance(boxes, tuple | list) and len(boxes) == 2
               and all(isinstance(b, Container) for b in boxes),
               f"start_pod returned {boxes!r}: return the two containers, (first, second)")
        spaces = _settled_namespaces(boxes)
        for box, what in zip(boxes, ("the first container", "the second container"),
                             strict=True):
            if not box.running:
                raise CheckFailed(_ended(box, what))
        host_ipc = procfs.namespace("self", "ipc")
        for space, what in zip(spaces, ("first", "second"), strict=True):
            expect(space != host_ipc,
                   f"the {what} container is in the host's IPC namespace: a pod shares its "
                   "namespace with its own containers, not with the host")
        expect(spaces[0] == spaces[1],
               f"each container has an IPC namespace of its own ({spaces[0]}, {spaces[1]}): "
               "a segment made in one is invisible in the other, as the host's was")
        ipc.run_in(boxes[0].pid, ("create_segment", key))
        [second] = ipc.run_in(boxes[1].pid, "view")
        expect(key in second.keys(), "the second container does not see the segment made "
                                     "from the first")
        expect(key not in _host_view().keys(), "the host sees the pod's segment")
    except BaseException:
        practice.close()
        _stop(*(boxes if isinstance(boxes, tuple | list) else ()))
        raise
    practice.close()
    running = _stop(*boxes)
    expect(not running, f"practice.close() left {len(running)} of the pod's containers running: "
                        "nothing registered their end with practice.defer (this check stopped "
                        "them for you)")
    return Passed(f"two containers shared {spaces[0]}: a segment made from the first was there "
                  "in the second, and nowhere on the host; the pod went with practice.close()")
