"""The checks of lesson 24, plug into podman.

`check_lifecycle` calls the learner's `write_config(bundle, rootfs)`, which writes a
config.json by hand, then holds pycontain-oci to the OCI lifecycle on that bundle
(`oci.conformance`) and looks at the running container from outside: its namespaces, its
hostname, its capabilities and its pids limit. The stretch, `check_prestart_hook`, wants a
prestart hook that saves the state the runtime hands it. A failure names the field and the
lesson that taught it, never the JSON to write.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable

from pycontain import state
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.checks.exercise import exercise
from pycontain.fs import rootfs
from pycontain.oci import config, conformance, lifecycle

LIFECYCLE_HINTS = (
    "Start from the config.json podman wrote, above: the same top-level keys (ociVersion, "
    "process, root, mounts, linux), fewer fields. `runc spec` prints another example.",
    "The container must write /data/ran and keep running: the bind mount's source is "
    "bundle/data, an absolute path; /proc needs a pid namespace of its own (lesson 03).",
    "The check reads the running container from outside: five namespaces of its own "
    "(config.NAMESPACES spells them), the hostname 'try-it', CAP_KILL alone in all three "
    "sets, linux.resources.pids.limit 10 (lesson 13).",
)
HOOK_HINTS = (
    "The runtime spec's config.md, 'POSIX-platform Hooks': a hook is a path, its args and env; "
    "prestart runs after create, before start, in the runtime's namespaces.",
    "The runtime writes the container's state (the JSON `pycontain-oci state` prints) on the "
    "hook's stdin: a shell reading stdin into bundle/data/hook.json keeps it.",
)
WANTED_NAMESPACES = ("ipc", "mnt", "net", "pid", "uts")


def _bundle(write_config: Callable[[str, str], object], name: str) -> str:
    """A fresh bundle directory (with data/) that the learner's function has written into."""
    bundle = tempfile.mkdtemp(prefix=f"pycontain-lesson24-{name}-")
    try:
        import shutil

        os.makedirs(os.path.join(bundle, "data"))
        copy = os.path.join(bundle, "rootfs")  # the bind's mount point is made in the root:
        shutil.copytree(str(rootfs.ensure()), copy, symlinks=True)  # never in the shared image
        attempt(f"{name}(bundle, rootfs)", write_config, bundle, copy)
        path = os.path.join(bundle, "config.json")
        expect(os.path.exists(path), f"{name}() wrote no config.json in the bundle it was "
               "given")
        try:
            config.load(bundle)
        except Exception as e:  # a SpecError names the JSON path
            message = e.worded(config.NAMES) if hasattr(e, "worded") else str(e)
            raise CheckFailed(f"pycontain-oci refuses the config.json: {message}") from e
    except BaseException:
        _remove(bundle)
        raise
    return bundle


def _created(bundle: str, root: str, container_id: str) -> int:
    """`pycontain-oci create` (a command: a notebook kernel is threaded and never forks a
    container itself, DESIGN "The process model"); the container's pid."""
    program = [lifecycle_program()]
    done = conformance.oci(program, root, "create", "--bundle", bundle, container_id)
    expect(done.returncode == 0, f"pycontain-oci create exited {done.returncode} on the "
           "bundle: run it in a terminal to read why")
    return int(lifecycle.state(root, container_id)["pid"])


def _inside(bundle: str) -> list[str]:
    """What the check sees of a created container from outside; the wrong parts, in words."""
    import subprocess

    root = tempfile.mkdtemp(prefix="pycontain-lesson24-root-")
    wrong = []
    try:
        pid = _created(bundle, root, "check")
        for kind in WANTED_NAMESPACES:
            if os.readlink(f"/proc/{pid}/ns/{kind}") == os.readlink(f"/proc/self/ns/{kind}"):
                wrong.append(f"it shares the host's {kind} namespace (linux.namespaces; "
                             "lesson 01 lists them)")
        name = subprocess.run(["nsenter", "--target", str(pid), "--uts", "hostname"],
                              capture_output=True, text=True).stdout.strip()
        if name != "try-it":
            wrong.append(f"its hostname is {name!r}, not 'try-it' (hostname; lesson 02)")
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":\t", 1) for line in f.read().splitlines())
        for key in ("CapEff", "CapBnd"):
            if int(status[key], 16) != 1 << 5:
                wrong.append(f"{key} is {status[key].strip()}, not CAP_KILL alone (0x20: "
                             "process.capabilities; lesson 20)")
        cgroup = state.cgroup_of(lifecycle.read(root, "check"))
        limit = cgroup.read("pids.max") if cgroup is not None else None
        if limit != "10":
            wrong.append(f"pids.max is {limit or 'not set (no cgroup)'}, not 10 "
                         "(linux.resources.pids; lesson 13)")
    finally:
        conformance.oci([lifecycle_program()], root, "delete", "--force", "check")
        os.rmdir(root)
    return wrong


@exercise(hints=LIFECYCLE_HINTS, answers=(conformance.example_config,))
def check_lifecycle(write_config: Callable[[str, str], object]) -> Passed:
    """`write_config(bundle, rootfs)` writes a config.json under which pycontain-oci keeps
    every promise of the lifecycle, and the container is the one the exercise describes."""
    bundle = _bundle(write_config, "write_config")
    try:
        lines = conformance.run([lifecycle_program()], bundle)
        red = [line for line in lines if not line.ok]
        if red:
            raise CheckFailed("the lifecycle broke a promise:\n" + conformance.show(lines)
                              + "\n(the bundle's process must write /data/ran, then keep "
                                "running: the bind of bundle/data, and its args)")
        wrong = _inside(bundle)
        expect(not wrong, "the lifecycle holds, but the container is not yet the one asked "
               "for:\n- " + "\n- ".join(wrong))
    finally:
        _remove(bundle)
    return Passed(f"all {len(lines)} promises of the lifecycle kept, and the container is the "
                  "one asked for")


@exercise(hints=HOOK_HINTS, stretch=True)
def check_prestart_hook(write_config: Callable[[str, str], object]) -> Passed:
    """Stretch: as `check_lifecycle`, with a prestart hook that writes the state it is given
    to bundle/data/hook.json."""
    bundle = _bundle(write_config, "write_config_with_hook")
    root = tempfile.mkdtemp(prefix="pycontain-lesson24-root-")
    try:
        pid = _created(bundle, root, "hook")
        saved = os.path.join(bundle, "data", "hook.json")
        expect(os.path.exists(saved), "after create, data/hook.json does not exist: no "
               "prestart hook wrote it (hooks.prestart; the runtime spec's config.md)")
        with open(saved) as f:
            text = f.read()
        try:
            shown = json.loads(text)
        except ValueError:
            raise CheckFailed(f"data/hook.json is not JSON: {text[:80]!r}: save the hook's "
                              "stdin as it is") from None
        expect(shown.get("pid") == pid and shown.get("status") == "created",
               f"data/hook.json says pid {shown.get('pid')}, status {shown.get('status')!r}; "
               f"the container is pid {pid}, created")
    finally:
        conformance.oci([lifecycle_program()], root, "delete", "--force", "hook")
        os.rmdir(root)
        _remove(bundle)
    return Passed(f"the prestart hook saw the created container, pid {pid}, before its "
                  "process ran")


def lifecycle_program() -> str:
    """The pycontain-oci command the checks run."""
    from pycontain.oci import podman

    return podman.runtime_path()


def _remove(bundle: str) -> None:
    import shutil

    shutil.rmtree(bundle, ignore_errors=True)
