"""The checks of lesson 06, stack image layers.

`check_own_layers`: the learner's `start_box(image, argv)` starts `argv` in a container whose
root is `image` under a writable layer of its own. The check starts two containers on one image
of its own (a copy of the embedded rootfs, so that a mistake cannot damage the real one), lets
each change different files, and reads both upper dirs while they run: each must hold exactly
its own container's changes, and the image none of them. What the containers run touches only
`/check06/`, a directory that exists in the check's image alone: a function that forgets the
image runs it on the host's root, where every command fails and nothing changes.

`check_docker_diff`, the stretch: the learner writes `docker diff` itself, reading an upper dir
the check made with every kind of change (added, changed, deleted, a directory made opaque), and
is compared with `layers.changed_files`, shown once it passes.

The messages say what the container or the upper dir showed and which section explains it,
never the option or the line to write.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycontain import runtime
from pycontain.checks import CheckFailed, Passed, attempt, expect, release_started
from pycontain.checks.exercise import exercise
from pycontain.fs import images, layers, rootfs
from pycontain.observe import probe
from pycontain.runtime import Container

NAMES = ("one", "two")
#: the directory the containers change: in the check's image only, never on the host
PLAYGROUND = "check06"


def argv_for(name: str) -> list[str]:
    """What each container runs: add a file, change one, delete one; then wait."""
    return ["sh", "-ec", f"cd /{PLAYGROUND}; echo {name} > {name}; echo {name} >> changed; "
                         f"rm deleted; echo done > {name}-done; exec sleep 20"]


def expected(name: str) -> dict[str, str]:
    """`layers.changed_files` of the container called `name`."""
    return {f"/{PLAYGROUND}/{name}": "A", f"/{PLAYGROUND}/changed": "C",
            f"/{PLAYGROUND}/deleted": "D", f"/{PLAYGROUND}/{name}-done": "A"}


def _image(scratch: str) -> str:
    """A copy of the embedded rootfs, with the playground the containers change."""
    image = images.import_tarball(images.export_tarball(rootfs.ensure(),
                                                        Path(scratch, "image.tar")),
                                  Path(scratch, "image"))
    (image / PLAYGROUND).mkdir()
    for name in ("changed", "deleted"):
        (image / PLAYGROUND / name).write_text(f"{name} by the image\n")
    return str(image)


OWN_LAYERS_HINTS = (
    "Two things to ask for: a root filesystem, and something on top of it that takes the "
    "writes. The section \"Give a container a layer of its own\" does both for one container.",
    "\"Two containers, one image\" runs two at once: how does each get a layer the other does "
    "not share? Return the container while it runs: the check reads its upper dir then.",
)


@exercise(hints=OWN_LAYERS_HINTS)
def check_own_layers(start_box: Callable[[str, list[str]], object],
                     timeout_s: float = 10.0) -> Passed:
    """Start two containers with `start_box(image, argv)` and read both upper dirs."""
    with tempfile.TemporaryDirectory(prefix="pycontain-check06-") as scratch:
        image = _image(scratch)
        before = _listing(image)
        boxes: list[Container] = []
        try:
            for name in NAMES:
                boxes.append(_started(start_box, image, name))
            uppers = [box.layer.upper for box in boxes if box.layer is not None]
            expect(len(set(uppers)) == 2,
                   f"both containers write to the same upper dir, {uppers[0]}: their changes "
                   "mix, and each sees the other's. Each needs a layer of its own")
            for box, name in zip(boxes, NAMES, strict=True):
                _wait_until_done(box, image, name, timeout_s)
            for box, name in zip(boxes, NAMES, strict=True):
                assert box.layer is not None
                seen = layers.changed_files(box.layer.upper, [image])
                extra = {p: k for p, k in seen.items() if p not in expected(name)}
                expect(not extra,
                       f"container {name!r}'s upper dir also holds {extra}, changes it did not "
                       "make: was its layer used before? A fresh container needs an empty one")
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
    shown = f"start_box(image, {argv_for(name)!r})"
    before = set(runtime.unwaited())
    box = attempt(shown, start_box, image, argv_for(name))
    if isinstance(box, runtime.Result):
        raise CheckFailed(f"{shown} returned {box!r}, the result of a container that has ended "
                          "(and slept 20 s first): return the container while it still runs, "
                          "so that the check can read its layer then")
    if not isinstance(box, Container):
        raise CheckFailed(f"{shown} returned {box!r}; return the running container"
                          f"{release_started(before)}")
    if box.spec.rootfs != os.path.realpath(image) or box.layer is None:
        probe.stop(box)
        expect(box.spec.rootfs is not None,
               "the container's root was the host's own /, not the image: what it ran "
               f"failed at once (/{PLAYGROUND} exists in the image only, so nothing on the "
               "host changed). Which option makes a directory the container's root? (lesson "
               "05, and this lesson's first section)")
        expect(box.spec.rootfs == os.path.realpath(image),
               f"the container's root was {box.spec.rootfs!r}, not the image it was given, "
               f"{image!r}")
        raise CheckFailed("the container has no writable layer of its own, so what it writes "
                          "goes into the image itself, and every container would see it. What "
                          "did the lesson's first section stack on top of the image?")
    return box


def _wait_until_done(box: Container, image: str, name: str, timeout_s: float) -> None:
    assert box.layer is not None
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(f"{box.layer.upper}/{PLAYGROUND}/{name}-done"):
        if not box.running:
            result = box.wait()
            raise CheckFailed(f"container {name!r} {result.reason} before it was done: "
                              f"{result.stderr.strip()!r}; run argv unchanged")
        expect(time.monotonic() < deadline,
               f"container {name!r} did not write /{PLAYGROUND}/{name}-done within "
               f"{timeout_s} s")
        time.sleep(0.02)


def _listing(root: str) -> dict[str, tuple[int, int]]:
    """Every path below root with its size and mtime: enough to see that nothing changed."""
    seen = {}
    for here, dirs, files in os.walk(root):
        for entry in dirs + files:
            st = os.lstat(os.path.join(here, entry))
            seen[os.path.relpath(os.path.join(here, entry), root)] = (st.st_size, st.st_mtime_ns)
    return seen


#: what the stretch's container changes: every kind of change a layer can record
CHANGES = ("echo new > /etc/motd; echo more >> /etc/hosts; rm /etc/group; "
           "mkdir -p /srv/app; echo x > /srv/app/conf; ln -s /srv/app/conf /etc/app.conf; "
           "rm -r /var/www; mkdir /var/www; echo mine > /var/www/index.html")

DOCKER_DIFF_HINTS = (
    "Walk the upper dir (os.walk) and decide for each entry: is it a whiteout, does the image "
    "have the same path, is it a directory copied up only to hold something? The sections "
    "\"Copy-up\" and \"Delete a file from a read-only image\" show each case.",
    "layers.is_whiteout and layers.is_opaque, shown in the lesson, answer two of the questions; "
    "os.path.lexists on the same path inside the image answers the third (a symlink counts "
    "even when its target is missing).",
    "Below an opaque directory the image's entries are hidden: an entry there is added even "
    "when the image has the same name. A directory the image has, not opaque, was copied up "
    "only to hold its changed children.",
)


def _kind(upper: str, path: str) -> str:
    """What the entry at `path` (as the container sees it) is in the upper dir, in words."""
    full = os.path.join(upper, path.lstrip("/"))
    if layers.is_whiteout(full):
        return "a whiteout, a character device 0/0"
    if layers.is_opaque(full):
        return "an opaque directory"
    try:
        mode = os.lstat(full).st_mode
    except OSError:
        return "not in the upper dir at all"
    return "a directory" if stat.S_ISDIR(mode) else "a symlink" if stat.S_ISLNK(mode) \
        else "a file"


def _judge_diff(given: dict[Any, Any], truth: dict[str, str], upper: str, image: str) -> None:
    """Name the first wrong turn the answer shows."""
    prefixed = [p for p in given if isinstance(p, str) and p.startswith(upper)]
    expect(not prefixed,
           f"you gave paths such as {prefixed[:1]}, on the host; give them as the container "
           "sees them, from its /, such as '/etc/hosts'")
    relative = [p for p in given if isinstance(p, str) and not p.startswith("/")]
    expect(not relative,
           f"you gave paths such as {relative[:1]}; give them as the container sees them, "
           "starting with '/', such as '/etc/hosts'")
    kinds = {k for k in given.values()}
    expect(kinds <= {"A", "C", "D"},
           f"your answer holds the kinds {sorted(map(repr, kinds))}; use 'A' (added), 'C' "
           "(changed) and 'D' (deleted), as docker diff does")
    for path, kind in sorted(truth.items()):
        seen = given.get(path)
        if seen == kind:
            continue
        what = _kind(upper, path)
        if seen is None:
            raise CheckFailed(f"you left out {path}, {what} in the upper dir, which docker diff "
                              f"lists as {kind!r}")
        if kind == "D":
            raise CheckFailed(f"you said {seen!r} for {path}, but in the upper dir it is {what}: "
                              "the mark overlayfs leaves for a deletion (the section \"Delete a "
                              "file from a read-only image\")")
        below_opaque = any(layers.is_opaque(os.path.join(upper, p.lstrip("/")))
                           for p in truth if path.startswith(p + "/"))
        if below_opaque:
            raise CheckFailed(f"you said {seen!r} for {path}, but it is below an opaque "
                              "directory, which hides everything the image has there: to the "
                              "container it is new")
        in_image = os.path.lexists(os.path.join(image, path.lstrip("/")))
        raise CheckFailed(f"you said {seen!r} for {path}, {what} in the upper dir, which the "
                          f"image {'has' if in_image else 'does not have'} at the same path: "
                          f"docker diff says {kind!r}")
    extra = sorted(p for p in given if p not in truth)
    carried = [p for p in extra if os.path.isdir(os.path.join(upper, str(p).lstrip("/")))]
    if carried:
        raise CheckFailed(f"you listed {carried[0]}, a directory of the image that was copied "
                          "up only to hold the changes below it (the section \"Copy-up\"): "
                          "leave such directories out")
    expect(not extra, f"you listed {extra}, which the upper dir does not hold")


@exercise(hints=DOCKER_DIFF_HINTS, answers=(layers.changed_files,), stretch=True)
def check_docker_diff(docker_diff: Callable[[str, str], object]) -> Passed:
    """Stretch: run a container that makes every kind of change in a kept layer, then compare
    `docker_diff(upper, image)` with `layers.changed_files(upper, [image])`."""
    with tempfile.TemporaryDirectory(prefix="pycontain-check06-") as scratch:
        image = _image(scratch)
        layer = Path(scratch, "layer")
        done = runtime.run(["sh", "-ec", CHANGES], rootfs=image, overlay=str(layer))
        expect(done.exit_code == 0, f"the check's own container {done.reason}: "
                                    f"{done.stderr.strip()!r}")
        upper = str(layer / "upper")
        truth = layers.changed_files(upper, [image])
        given = attempt(f"docker_diff({upper!r}, {image!r})", docker_diff, upper, image)
        expect(isinstance(given, dict),
               f"docker_diff returned {given!r}; return a dict from each path, as the container "
               "sees it, to its kind: {'/etc/hosts': 'C', ...}")
        assert isinstance(given, dict)
        _judge_diff(given, truth, upper, image)
    return Passed(f"your docker diff agrees with the kernel's layer on all {len(truth)} "
                  "changes: added, changed, deleted, and a directory made opaque")
