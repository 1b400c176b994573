"""The checks of lesson 06, stack image layers.

The exercise: write `start_box(image, argv)`, which starts `argv` in a container whose root is
`image` under a writable layer of its own. The check starts two containers on one image of its
own (a copy of the embedded rootfs, so that a mistake cannot damage the real one), lets each
change different files, and reads both upper dirs while they run: each must hold exactly its own
container's changes, and the image none of them.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.fs import images, layers, rootfs
from pycontain.observe import probe
from pycontain.runtime import Container

NAMES = ("one", "two")


def argv_for(name: str) -> list[str]:
    """What each container runs: add a file, change one, delete one; then wait."""
    return ["sh", "-c", f"echo {name} > /etc/{name}; echo {name} >> /etc/hosts; "
                        f"rm /etc/group; echo done > /{name}-done; exec sleep 20"]


def expected(name: str) -> dict[str, str]:
    """`layers.changed_files` of the container called `name`."""
    return {f"/etc/{name}": "A", "/etc/hosts": "C", "/etc/group": "D", f"/{name}-done": "A"}


def check_own_layers(start_box: Callable[[str, list[str]], object],
                     timeout_s: float = 10.0) -> Passed:
    """Start two containers with `start_box(image, argv)` and read both upper dirs."""
    with tempfile.TemporaryDirectory(prefix="pycontain-check06-") as scratch:
        image = str(images.import_tarball(
            images.export_tarball(rootfs.ensure(), Path(scratch, "image.tar")),
            Path(scratch, "image")))
        before = _listing(image)
        boxes: list[Container] = []
        try:
            for name in NAMES:
                boxes.append(_started(start_box, image, name))
            for box, name in zip(boxes, NAMES, strict=True):
                _wait_until_done(box, image, name, timeout_s)
            uppers = [box.layer.upper for box in boxes if box.layer is not None]
            expect(len(set(uppers)) == 2,
                   "both containers wrote to the same upper dir; give each its own layer "
                   "(overlay=True makes a new one for every container)")
            for box, name in zip(boxes, NAMES, strict=True):
                assert box.layer is not None
                seen = layers.changed_files(box.layer.upper, [image])
                expect(seen == expected(name),
                       f"container {name!r}'s upper dir holds {seen}, expected exactly "
                       f"{expected(name)}: its own changes and nothing else")
            expect(_listing(image) == before, "the image changed while the containers ran")
        finally:
            for box in boxes:
                probe.stop(box)
    return Passed("two containers changed one image; each upper dir holds exactly its own "
                  "container's changes (A: added, C: changed, D: deleted), the image none")


def _started(start_box: Callable[[str, list[str]], object], image: str, name: str
             ) -> Container:
    box: Container = attempt(f"start_box(image, {argv_for(name)!r})", start_box, image,
                             argv_for(name), returns=Container,
                             instead="return what pycontain.spawn(argv, ...) returns, a running "
                             "container")
    if box.spec.rootfs != os.path.realpath(image) or box.layer is None:
        probe.stop(box)
        expect(box.spec.rootfs == os.path.realpath(image),
               f"the container's root was {box.spec.rootfs!r}, not the image: pass rootfs=image")
        raise CheckFailed("the container has no writable layer of its own, so it would write "
                          "into the image itself: ask for overlay=True")
    return box


def _wait_until_done(box: Container, image: str, name: str, timeout_s: float) -> None:
    assert box.layer is not None
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(f"{box.layer.upper}/{name}-done"):
        if not box.running:
            result = box.wait()
            raise CheckFailed(f"container {name!r} {result.reason} before it was done: "
                              f"{result.stderr.strip()!r}; run argv unchanged")
        expect(time.monotonic() < deadline,
               f"container {name!r} did not write /{name}-done within {timeout_s} s")
        time.sleep(0.02)


def _listing(root: str) -> dict[str, tuple[int, int]]:
    """Every path below root with its size and mtime: enough to see that nothing changed."""
    seen = {}
    for here, dirs, files in os.walk(root):
        for entry in dirs + files:
            st = os.lstat(os.path.join(here, entry))
            seen[os.path.relpath(os.path.join(here, entry), root)] = (st.st_size, st.st_mtime_ns)
    return seen
