"""The OCI lifecycle, checked against any runtime's command line: runc and pycontain-oci alike
(lesson 24).

The runtime spec promises a lifecycle and a state, and `run(runtime, bundle)` holds a runtime
to them, one line per promise, each with what it saw:

- `create` runs nothing: the state says *created*, and the process has not done its first
  thing yet (the bundle's process writes `data/ran` in the bundle when it runs);
- the state is the spec's JSON: ociVersion, id, status, pid (the process's, alive), bundle;
- `start` runs it (*running*, `data/ran` appears), and a second `start` fails;
- `delete` of a running container fails without `--force`;
- `kill ID KILL` stops it (*stopped*), and a `kill` of a stopped container fails;
- `delete` then removes it: `state` fails afterwards.

The bundle's contract: its process writes `/data/ran`, /data being the bundle's `data/`
directory bound in, then keeps running for at least 30 s.

See also: the OCI runtime spec, runtime.md ("State", "Lifecycle", "Operations").
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

Line = namedtuple("Line", "name ok evidence")
CONTAINER_ID = "conformance-1"
STATE_KEYS = ("ociVersion", "id", "status", "pid", "bundle")


def oci(runtime: list[str], root: str, *words: str) -> subprocess.CompletedProcess[str]:
    """One verb of `runtime` with its state under `root`; the container's stdio is /dev/null
    (a pipe would stay open while it runs)."""
    return subprocess.run([*runtime, "--root", root, *words], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE if words[0] == "state" else subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, text=True, timeout=60)


def _status(runtime: list[str], root: str) -> dict[str, object] | None:
    done = oci(runtime, root, "state", CONTAINER_ID)
    try:
        shown: dict[str, object] | None = (json.loads(done.stdout) if done.returncode == 0
                                           else None)
    except ValueError:
        return None
    return shown


def _wait(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def run(runtime: list[str], bundle: str) -> list[Line]:
    """Hold `runtime` (its argv: `["runc"]`, `[".../pycontain-oci"]`) to the lifecycle on
    `bundle`; one Line per promise. Whatever it made is deleted at the end."""
    marker = os.path.join(bundle, "data", "ran")
    if os.path.exists(marker):
        os.unlink(marker)
    root = tempfile.mkdtemp(prefix="pycontain-conformance-")
    lines: list[Line] = []

    def line(name: str, ok: bool, evidence: str) -> bool:
        lines.append(Line(name, ok, evidence))
        return ok

    try:
        created = oci(runtime, root, "create", "--bundle", bundle, CONTAINER_ID)
        if not line("create", created.returncode == 0, f"exit status {created.returncode}"):
            return lines
        shown = _status(runtime, root) or {}
        line("created, nothing run", shown.get("status") == "created"
             and not os.path.exists(marker),
             f"status {shown.get('status')!r}, data/ran "
             + ("written: the process ran before start" if os.path.exists(marker) else
                "not written yet"))
        missing = [k for k in STATE_KEYS if k not in shown]
        pid = shown.get("pid")
        line("state's JSON", not missing and shown.get("id") == CONTAINER_ID
             and isinstance(pid, int) and pid > 0 and os.path.exists(f"/proc/{pid}"),
             f"missing {missing}" if missing else f"pid {pid}, bundle {shown.get('bundle')}")
        started = oci(runtime, root, "start", CONTAINER_ID)
        ran = _wait(lambda: os.path.exists(marker))
        shown = _status(runtime, root) or {}
        line("start runs it", started.returncode == 0 and ran
             and shown.get("status") == "running",
             f"exit status {started.returncode}, data/ran "
             f"{'written' if ran else 'not written in 10 s'}, status {shown.get('status')!r}")
        again = oci(runtime, root, "start", CONTAINER_ID)
        line("start twice fails", again.returncode != 0, f"exit status {again.returncode}")
        refused = oci(runtime, root, "delete", CONTAINER_ID)
        line("delete of a running one fails", refused.returncode != 0,
             f"exit status {refused.returncode}")
        killed = oci(runtime, root, "kill", CONTAINER_ID, "KILL")
        stopped = _wait(lambda: (_status(runtime, root) or {}).get("status") == "stopped")
        line("kill stops it", killed.returncode == 0 and stopped,
             f"exit status {killed.returncode}, "
             f"status {(_status(runtime, root) or {}).get('status')!r}")
        dead = oci(runtime, root, "kill", CONTAINER_ID, "KILL")
        line("kill of a stopped one fails", dead.returncode != 0, f"exit status {dead.returncode}")
        deleted = oci(runtime, root, "delete", CONTAINER_ID)
        gone = oci(runtime, root, "state", CONTAINER_ID)
        line("delete removes it", deleted.returncode == 0 and gone.returncode != 0,
             f"delete exit status {deleted.returncode}, then state {gone.returncode}")
    finally:
        oci(runtime, root, "delete", "--force", CONTAINER_ID)
        for entry in os.listdir(root):  # runc's directory of a container it deleted is gone
            subprocess.run(["rm", "-rf", os.path.join(root, entry)], check=False)
        os.rmdir(root)
    return lines


def show(lines: list[Line]) -> str:
    """The lines as a table: ✔ or ✘, the promise, what was seen."""
    return "\n".join(f"{'✔' if ok else '✘'} {name:<32} {evidence}" for name, ok, evidence in lines)


def example_config(bundle: str, rootfs: str) -> str:
    """Write a config.json in `bundle` that keeps the contract above, on `rootfs`: /data bound
    from `bundle/data`, `sh` writing /data/ran and sleeping, five namespaces of its own, a
    pids limit, one capability. Return its path."""
    os.makedirs(os.path.join(bundle, "data"), exist_ok=True)
    caps = ["CAP_KILL"]
    config = {
        "ociVersion": "1.0.2",
        "process": {"args": ["sh", "-c", "echo yes > /data/ran; exec sleep 60"],
                    "env": ["PATH=/bin:/usr/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                    "noNewPrivileges": True,
                    "capabilities": {"bounding": caps, "effective": caps, "permitted": caps}},
        "root": {"path": rootfs, "readonly": True},
        "hostname": "conformance",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/data", "type": "bind",
                    "source": os.path.join(bundle, "data"), "options": ["rbind", "rw"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "uts", "ipc",
                                                       "network")],
                  "resources": {"pids": {"limit": 10}}},
    }
    path = os.path.join(bundle, "config.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return path
