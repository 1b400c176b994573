"""The checks of lesson 07, isolate IPC.

The check looks at real IPC objects on both sides: it lists what the host's IPC namespace holds
before and after the learner's code runs, joins the container's IPC namespace with nsenter(1) to
list what is inside, and verifies that the learner's lab removes what was made on the host.
"""

from __future__ import annotations

from collections.abc import Callable

from pycontain import procfs
from pycontain.checks import Passed, attempt, expect
from pycontain.lab import Lab
from pycontain.namespaces import ipc
from pycontain.runtime import Container


def _ours(view: ipc.IpcView) -> set[str]:
    return set(view.objects())


def _kinds(labels: set[str]) -> set[str]:
    return {label.split()[0] for label in labels}


def _remove_on_host(labels: set[str]) -> None:
    """Remove the host objects named by `labels` (the check tidies up after a failed attempt)."""
    [host] = ipc.run_in(None, "view")
    for segment in host.segments:
        if segment.label in labels:
            ipc.remove_segment(segment.shmid)
    for name in host.queues:
        if f"mq {name}" in labels:
            ipc.remove_queue(name)


def check_isolated_both_ways(prove_isolation: Callable[[Lab], object]) -> Passed:
    """Call `prove_isolation(practice)` with a fresh Lab; it returns a running container.

    Then: the host holds a new segment and a new queue, the container's IPC namespace holds a
    segment and a queue of its own, neither side sees the other's, and `practice.close()` stops
    the container and removes what was made on the host.
    """
    [host] = ipc.run_in(None, "view")
    before = _ours(host)
    practice = Lab(check=False)
    made: set[str] = set()
    box: object = None
    try:
        box = attempt("prove_isolation(practice)", prove_isolation, practice)
        [host] = ipc.run_in(None, "view")
        made = _ours(host) - before
        _check_sides(box, made, host)
    except BaseException:
        practice.close()
        _tidy(box, made)  # a failed attempt leaves nothing behind either
        raise
    practice.close()
    return _check_closed(box, made)


def _tidy(box: object, made: set[str]) -> bool:
    """Stop `box` if it still runs and remove `made` from the host; True if the box ran."""
    running = isinstance(box, Container) and box.running
    if running:
        assert isinstance(box, Container)
        box.kill()
        box.wait()
    _remove_on_host(made)
    return running


def _check_sides(box: object, made: set[str], host: ipc.IpcView) -> None:
    expect(isinstance(box, Container) and box.running,
           f"prove_isolation returned {box!r}: return the container you started with "
           "pycontain.spawn([...], namespaces={'ipc'}), still running (sleep 300)")
    assert isinstance(box, Container)
    expect(box.namespaces()["ipc"] != procfs.namespace("self", "ipc"),
           "the container shares this notebook's IPC namespace, so nothing can be isolated: "
           "start it with namespaces={'ipc'}")
    expect(_kinds(made) == {"shm", "mq"},
           f"on the host I found these new objects: {sorted(made) or 'none'}; create one "
           "segment (ipc.create_segment(ipc.new_key())) and one queue "
           "(ipc.create_queue(ipc.new_queue_name('host'))) in this notebook")
    [inside] = ipc.run_in(box.pid, "view")
    own = _ours(inside)
    expect(_kinds(own) == {"shm", "mq"},
           f"inside the container's IPC namespace I found {sorted(own) or 'nothing'}; create a "
           "segment and a queue there too: ipc.run_in(box.pid, ('create_segment', key), "
           "('create_queue', name))")
    both = own & _ours(host)
    expect(not both,
           f"{sorted(both)} appear on both sides. Either the container shares the host's IPC "
           "namespace, or you used the same key or name twice: these may be two different "
           "objects, but the check cannot tell them apart; use a fresh key and name on each side")


def _check_closed(box: object, made: set[str]) -> Passed:
    [host] = ipc.run_in(None, "view")
    left = made & _ours(host)
    still_running = _tidy(box, left)
    expect(not still_running,
           "practice.close() left the container running: register its end right after "
           "spawning it, practice.defer(lambda: probe.stop(box), 'stop the box') (this check "
           "stopped it for you)")
    expect(not left,
           f"practice.close() left {sorted(left)} on the host: register each removal right "
           "after creating it, e.g. practice.defer(lambda: ipc.remove_segment(shmid), "
           "'remove the segment') (this check removed them for you)")
    return Passed(f"the host's {', '.join(sorted(made))} stayed invisible inside the "
                  "container, the container's own objects stayed invisible to the host, and "
                  "practice.close() left nothing behind")
