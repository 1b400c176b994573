"""Start-to-exit latency of `/bin/true` in a container: pycontain against reference runtimes.

A benchmark, not a test: it prints numbers and never fails because of them.

Every runtime starts `/bin/true` in the embedded rootfs with pid, mnt, uts, ipc and net
namespaces. One round runs each runtime once, in a rotating order, so slow phases of the machine
hit all of them alike; the report gives medians and, for each pair, the median of the per-round
ratios (absolute times drift by several ms between runs on a 2-core machine: compare ratios).

    pycontain CLI   `pycontain run --namespaces pid,mnt,uts,ipc,net --rootfs R --no-overlay
                    -- /bin/true` (runc too runs on the bundle's rootfs itself); `CLI+overlay`
                    is the same with the CLI's default throw-away overlay
    pycontain API   `pycontain.run(["/bin/true"], namespaces=..., rootfs=R)` in this process
    runc, crun      `runc run ID` on an OCI bundle from `runc spec` (rootfs: a copy of R)
    bwrap           `bwrap --unshare-pid --unshare-uts --unshare-ipc --unshare-net ...`
    unshare         `unshare --pid --fork --mount --uts --ipc --net --mount-proc chroot R ...`

runc, crun and bubblewrap are installed with apt-get when missing; a runtime that cannot be
installed or cannot run here is reported as skipped, with the reason.

crun refuses hybrid cgroup hosts (v1 controllers plus a cgroup2 mount). On such a host this script
moves itself, before measuring anything, into a private mount namespace and a cgroup namespace in
which the cgroup2 mount is gone and each v1 hierarchy is re-mounted rooted at this process's own
cgroup (notes/reference-runtimes.md). Every runtime then runs in that same view, so the pairing
stays fair, and runc and crun create their cgroups below ours. Nothing changes on the host.

Usage: bench/start_latency.py [--rounds 30] [--rootfs DIR] [--no-save]   (as root, in the lab
VM or with PYCONTAIN_ALLOW_HOST=1; `make bench` runs it)
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pycontain
from pycontain import lab, syscalls
from pycontain.errors import PycontainError
from pycontain.fs import rootfs
from pycontain.syscalls import CloneFlag, MountFlag, UmountFlag

NAMESPACES = ("pid", "mnt", "uts", "ipc", "net")
OCI_NAMESPACES = {"pid", "mount", "uts", "ipc", "network"}  # the same five, as OCI spells them
REFERENCES = ("runc", "crun", "bwrap", "unshare")
PACKAGES = {"runc": "runc", "crun": "crun", "bwrap": "bubblewrap"}
#: the targets this benchmark exists for (DESIGN: a Python runtime can start as fast as runc)
TARGETS = {("pycontain CLI", "runc"): 1.0, ("pycontain API", "runc"): 0.5}
RESULTS = Path(__file__).resolve().parent / "results"

Runner = Callable[[], None]


class Skip(Exception):
    """This runtime cannot be measured here; the message says why."""


def run_quiet(argv: list[str], what: str) -> None:
    """Run one container start; raise if it did not exit 0."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} exited {done.returncode}: {done.stderr.strip()[-300:]}")


# --- installing and preparing the reference runtimes -------------------------------------------

def install_missing(wanted: list[str]) -> dict[str, str]:
    """apt-get install the reference runtimes that are missing; return {runtime: why skipped}."""
    missing = [name for name in wanted if name in PACKAGES and not shutil.which(name)]
    if not missing or not shutil.which("apt-get"):
        return {n: "not installed and no apt-get" for n in missing}
    packages = [PACKAGES[n] for n in missing]
    print(f"installing {' '.join(packages)} with apt-get ...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", *packages]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        for package in packages:  # one by one: a package that fails must not block the others
            subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env,
                           capture_output=True)
    return {n: f"apt-get could not install {PACKAGES[n]}" for n in missing if not shutil.which(n)}


def is_hybrid() -> bool:
    return lab.cgroup_mode() == "hybrid"


def enter_v1_only_cgroup_view() -> None:
    """Move this process into a mount + cgroup namespace whose /sys/fs/cgroup is v1 only.

    The hierarchies are re-mounted inside the new cgroup namespace, so their root is this
    process's own cgroup: runtimes that use the hierarchy root (crun) stay below us.
    """
    syscalls.unshare(CloneFlag.CLONE_NEWNS | CloneFlag.CLONE_NEWCGROUP)
    # Private first, or the unmounts and mounts below would propagate to the host (lesson 04).
    syscalls.mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        left, _, right = line.partition(" - ")
        mount_point = left.split()[4]
        fstype, _source, options = (right.split() + ["", "", ""])[:3]
        if not mount_point.startswith("/sys/fs/cgroup/"):
            continue
        if fstype == "cgroup2":
            syscalls.umount2(mount_point, UmountFlag.MNT_DETACH)
        elif fstype == "cgroup":
            wanted = [o for o in options.split(",") if o not in ("rw", "ro")]
            if all(o.startswith("name=") for o in wanted):
                wanted.insert(0, "none")  # a named hierarchy without controllers
            syscalls.umount2(mount_point, UmountFlag.MNT_DETACH)
            syscalls.mount("cgroup", mount_point, "cgroup",
                           MountFlag.MS_NOSUID | MountFlag.MS_NODEV | MountFlag.MS_NOEXEC,
                           ",".join(wanted))


def make_bundle(workdir: Path, root: str) -> Path:
    """An OCI bundle from `runc spec`: a copy of the rootfs, /bin/true, no terminal."""
    bundle = workdir / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec"], cwd=bundle, check=True, capture_output=True)
    # cp -a, not shutil.copytree: a device node in the rootfs is copied as a node, where
    # copytree would read it (/dev/zero or /dev/full: a copy that fills the disk)
    subprocess.run(["cp", "-a", root, str(bundle / "rootfs")], check=True)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    config["root"] = {"path": "rootfs", "readonly": True}
    linux = config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] in OCI_NAMESPACES]
    missing = OCI_NAMESPACES - {ns["type"] for ns in linux["namespaces"]}
    linux["namespaces"] += [{"type": t} for t in sorted(missing)]
    config_path.write_text(json.dumps(config, indent=2))
    return bundle


class OciRuntime:
    """`runc run` or `crun run` with a unique container id per start, deleted afterwards."""

    def __init__(self, name: str, bundle: Path, state: Path) -> None:
        self.name = name
        self.bundle = bundle
        self.state = state  # --root: the runtime's state lives in our temp dir, not /run
        self.count = 0
        self.ids: list[str] = []

    def __call__(self) -> None:
        self.count += 1
        cid = f"pycontain-bench-{os.getpid()}-{self.name}-{self.count}"
        self.ids.append(cid)
        run_quiet([self.name, "--root", str(self.state), "run", "--bundle", str(self.bundle),
                   cid], self.name)

    def delete_all(self) -> None:
        """`delete --force` every container still known (a run that failed half-way)."""
        if not self.state.exists():
            return
        listed = subprocess.run([self.name, "--root", str(self.state), "list", "-q"],
                                capture_output=True, text=True)
        for cid in listed.stdout.split():
            subprocess.run([self.name, "--root", str(self.state), "delete", "--force", cid],
                           capture_output=True)


# --- measuring ----------------------------------------------------------------------------------

def pycontain_cli_argv(root: str, *, overlay: bool = False) -> list[str]:
    """The CLI as the pairs compare it: no overlay by default, like runc on a bundle's rootfs
    (the CLI's default throw-away overlay is measured on its own line)."""
    entry = Path(sys.executable).parent / "pycontain"
    if not entry.exists():
        raise Skip(f"no `pycontain` entry point next to {sys.executable}")
    return [str(entry), "run", "--namespaces", ",".join(NAMESPACES), "--rootfs", root,
            *([] if overlay else ["--no-overlay"]), "--", "/bin/true"]


def pycontain_api(root: str) -> Runner:
    def run() -> None:
        result = pycontain.run(["/bin/true"], namespaces=set(NAMESPACES), rootfs=root)
        if result.status != 0:
            raise RuntimeError(f"pycontain.run exited {result.status}: {result.stderr}")
    return run


def runners(root: str, workdir: Path, skipped: dict[str, str],
            oci: list[OciRuntime]) -> dict[str, Runner]:
    """Every runtime that can be measured here, each tried once (a warm-up run)."""
    candidates: dict[str, Callable[[], Runner]] = {}
    cli = pycontain_cli_argv(root)
    candidates["pycontain CLI"] = lambda: (lambda: run_quiet(cli, "pycontain run"))
    layered = pycontain_cli_argv(root, overlay=True)
    candidates["pycontain CLI+overlay"] = lambda: (lambda: run_quiet(layered, "pycontain run"))
    candidates["pycontain API"] = lambda: pycontain_api(root)

    bundle: list[Path] = []

    def oci_runtime(name: str) -> Runner:
        if not bundle:
            bundle.append(make_bundle(workdir, root))
        runtime = OciRuntime(name, bundle[0], workdir / f"{name}-state")
        oci.append(runtime)
        return runtime

    for name in ("runc", "crun"):
        if name not in skipped:
            candidates[name] = lambda name=name: oci_runtime(name)  # type: ignore[misc]
    if "bwrap" not in skipped:
        bwrap = ["bwrap", "--unshare-pid", "--unshare-uts", "--unshare-ipc", "--unshare-net",
                 "--ro-bind", root, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"]
        candidates["bwrap"] = lambda: (lambda: run_quiet(bwrap, "bwrap"))
    if shutil.which("unshare") and shutil.which("chroot"):
        plain = ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net",
                 "--mount-proc", "chroot", root, "/bin/true"]
        candidates["unshare"] = lambda: (lambda: run_quiet(plain, "unshare"))
    else:
        skipped["unshare"] = "unshare(1) or chroot(1) not found"

    ready: dict[str, Runner] = {}
    for name, make in candidates.items():
        try:
            runner = make()
            runner()  # warm-up: page cache, first imports, one-time set-up
            ready[name] = runner
        except (Skip, RuntimeError, OSError, subprocess.CalledProcessError,
                PycontainError) as e:
            skipped[name] = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
    return ready


def measure(ready: dict[str, Runner], rounds: int) -> dict[str, list[float]]:
    """Paired rounds: each runtime once per round, the order rotating from round to round."""
    names = list(ready)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            ready[name]()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def paired_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))


def report(times: dict[str, list[float]], skipped: dict[str, str], rounds: int,
           view: str) -> dict[str, object]:
    print(f"start-to-exit of /bin/true, namespaces {','.join(NAMESPACES)}, {rounds} paired rounds"
          f" ({platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()})")
    if view:
        print(view)
    print()
    print(f"{'runtime':<15} {'median':>9} {'min':>8} {'max':>8}")
    for name, values in times.items():
        print(f"{name:<15} {statistics.median(values):7.1f} ms {min(values):6.1f} ms "
              f"{max(values):6.1f} ms")
    for name, why in skipped.items():
        print(f"{name:<15} skipped: {why}")
    ratios: dict[str, float] = {}
    print("\npaired ratios (median of per-round ratios)")
    for mine in ("pycontain CLI", "pycontain CLI+overlay", "pycontain API"):
        for ref in REFERENCES:
            if mine in times and ref in times:
                ratios[f"{mine} / {ref}"] = r = paired_ratio(times, mine, ref)
                print(f"  {mine} / {ref:<8} {r:5.2f}x")
    print("\ntargets")
    met: dict[str, bool | None] = {}
    for (mine, ref), limit in TARGETS.items():
        key = f"{mine} / {ref}"
        if key in ratios:
            met[key] = ratios[key] <= limit
            verdict = "met" if met[key] else "NOT met"
            print(f"  {key:<24} <= {limit:.1f}x: {ratios[key]:.2f}x  {verdict}")
        else:
            met[key] = None
            print(f"  {key:<24} <= {limit:.1f}x: not measured")
    return {"rounds": rounds, "namespaces": list(NAMESPACES), "view": view,
            "medians_ms": {n: statistics.median(v) for n, v in times.items()},
            "times_ms": times, "ratios": ratios, "targets_met": met, "skipped": skipped,
            "machine": {"node": platform.node(), "cpus": os.cpu_count(),
                        "kernel": platform.release(), "python": platform.python_version()}}


def interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="paired rounds (default 30)")
    parser.add_argument("--rootfs", help="the container root (default: the embedded rootfs)")
    parser.add_argument("--no-save", action="store_true",
                        help=f"do not write the JSON results to {RESULTS}")
    args = parser.parse_args()
    try:
        lab.require_ready()
    except PycontainError as e:
        print(f"start_latency: {e}", file=sys.stderr)
        return 2
    root = os.path.realpath(args.rootfs or rootfs.ensure())
    # Compile pycontain's bytecode first: with PYTHONDONTWRITEBYTECODE set (as in some shells and
    # CI) the CLI would otherwise compile the modules it imports on every run, as no user sees it.
    compileall.compile_dir(Path(pycontain.__file__).parent, quiet=1)

    skipped = install_missing(["runc", "crun", "bwrap"])
    view = ""
    if is_hybrid() and "crun" not in skipped:
        try:
            enter_v1_only_cgroup_view()
            view = ("all runtimes ran in a private mount + cgroup namespace with a v1-only "
                    "/sys/fs/cgroup (crun refuses hybrid hosts)")
        except PycontainError as e:
            skipped["crun"] = f"cannot give it a v1-only cgroup view: {e}".splitlines()[0]

    workdir = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    oci: list[OciRuntime] = []
    signal.signal(signal.SIGTERM, interrupted)  # clean up on SIGTERM as on Ctrl-C
    try:
        ready = runners(root, workdir, skipped, oci)
        if not ready:
            print("nothing to measure", file=sys.stderr)
            return 1
        times = measure(ready, args.rounds)
    finally:
        for runtime in oci:
            runtime.delete_all()
        shutil.rmtree(workdir, ignore_errors=True)
    results = report(times, skipped, args.rounds, view)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"start_latency-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
