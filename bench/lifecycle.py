"""The lifecycle's speed against runc's: detached start and removal, exec, and 100 in a loop.

A benchmark, not a test: it prints numbers and never fails because of them. Every pair runs in
one process, round by round in a rotating order, as bench/start_latency.py pairs its runtimes
(whose runc set-up this reuses: the OCI bundle from `runc spec`, apt-get when runc is missing,
the private v1-only cgroup view on a hybrid host, so both runtimes run in the same view):

    detach     `pycontain run -d --namespaces pid,mnt,uts,ipc,net --rootfs R --no-overlay --
               sleep 600` then `pycontain rm -f ID`, against `runc create` + `runc start` +
               `runc delete --force` of the same `sleep 600` (runc's own detached lifecycle)
    exec       `pycontain exec ID /bin/true` into one running container, against `runc exec
               ID /bin/true` into one running runc container
    oci        `pycontain-oci create` + `start` + (the container's stdout at EOF: /bin/true has
               exited) + `delete --force` of /bin/true, against runc's same four steps on the same
               bundle (runc spec's, without its ambient capabilities, which pycontain refuses)
    loop       --loop containers (default 100) started with `run -d` and removed with `rm -f`
               one after the other, each with one runc create/start/delete beside it: the time
               of each tenth of the loop (linear growth means a flat row), and what is left at
               the end (pycontain's run directory, cgroups, layers: nothing, or it says what)

Usage: bench/lifecycle.py [--rounds 40] [--loop 100] [--rootfs DIR]   (as root, in the lab VM
or with PYCONTAIN_ALLOW_HOST=1)
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pycontain
from pycontain import lab, settings, state
from pycontain.errors import PycontainError
from pycontain.fs import rootfs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import start_latency  # noqa: E402  (its runc set-up and its pairing, reused)
from start_latency import NAMESPACES, make_bundle, measure, paired_ratio, run_quiet  # noqa: E402

SLEEP = ["sleep", "600"]


def pycontain_argv(*words: str) -> list[str]:
    entry = Path(sys.executable).parent / "pycontain"
    return [str(entry), *words]


def output(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


class Runc:
    """runc's detached lifecycle on a bundle whose process is `sleep 600`."""

    def __init__(self, workdir: Path, root: str) -> None:
        where = workdir / "long"
        where.mkdir()
        self.bundle = make_bundle(where, root)
        config_path = self.bundle / "config.json"
        config = json.loads(config_path.read_text())
        config["process"]["args"] = SLEEP
        config_path.write_text(json.dumps(config, indent=2))
        self.root = str(workdir / "runc-state")
        self.count = 0

    def runc(self, *words: str) -> list[str]:
        return ["runc", "--root", self.root, *words]

    def create_start(self) -> str:
        self.count += 1
        cid = f"pycontain-bench-{os.getpid()}-{self.count}"
        # not run_quiet: the container keeps runc's stdio, so a pipe would never see EOF
        created = subprocess.run(self.runc("create", "--bundle", str(self.bundle), cid),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        if created.returncode != 0:
            raise RuntimeError(f"runc create exited {created.returncode}")
        run_quiet(self.runc("start", cid), "runc start")
        return cid

    def delete(self, cid: str) -> None:
        run_quiet(self.runc("delete", "--force", cid), "runc delete")

    def lifecycle(self) -> None:
        self.delete(self.create_start())

    def delete_all(self) -> None:
        listed = subprocess.run(self.runc("list", "-q"), capture_output=True, text=True)
        for cid in listed.stdout.split():
            subprocess.run(self.runc("delete", "--force", cid), capture_output=True)


class OciTrue:
    """`create`, `start`, wait for the exit, `delete` of /bin/true with an OCI runtime's CLI."""

    def __init__(self, argv: list[str], bundle: Path, state_root: Path) -> None:
        self.argv, self.bundle, self.root = argv, bundle, str(state_root)
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        cid = f"pycontain-bench-{os.getpid()}-{self.count}"
        r, w = os.pipe()  # the container's stdout: EOF once /bin/true has exited
        try:
            created = subprocess.run([*self.argv, "--root", self.root, "create", "--bundle",
                                      str(self.bundle), cid], stdin=subprocess.DEVNULL,
                                     stdout=w, stderr=subprocess.DEVNULL)
            os.close(w)
            w = -1
            if created.returncode != 0:
                raise RuntimeError(f"{self.argv[0]} create exited {created.returncode}")
            run_quiet([*self.argv, "--root", self.root, "start", cid], "start")
            while os.read(r, 4096):
                pass
            # --force: runc may still see the ended process unreaped (running) at EOF
            run_quiet([*self.argv, "--root", self.root, "delete", "--force", cid], "delete")
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    def delete_all(self) -> None:
        for cid in (os.listdir(self.root) if os.path.isdir(self.root) else []):
            subprocess.run([*self.argv, "--root", self.root, "delete", "--force", cid],
                           capture_output=True)


def oci_true_bundle(workdir: Path, root: str) -> Path:
    where = workdir / "true"
    where.mkdir()
    bundle = make_bundle(where, root)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["capabilities"].pop("ambient", None)
    config_path.write_text(json.dumps(config, indent=2))
    return bundle


def pycontain_detach(root: str) -> str:
    return output(pycontain_argv("run", "-d", "--namespaces", ",".join(NAMESPACES),
                                 "--rootfs", root, "--no-overlay", "--", *SLEEP), "run -d")


def pycontain_lifecycle(root: str) -> None:
    run_quiet(pycontain_argv("rm", "-f", pycontain_detach(root)), "pycontain rm -f")


def tenths(times: list[float]) -> list[float]:
    """The median time of each tenth of a loop, in ms."""
    size = max(1, len(times) // 10)
    return [statistics.median(times[i:i + size]) for i in range(0, len(times), size)]


def loop(count: int, root: str, runc: Runc) -> dict[str, list[float]]:
    """`count` pycontain run -d + rm -f, each beside a runc create/start/delete."""
    times: dict[str, list[float]] = {"pycontain": [], "runc": []}
    for i in range(count):
        pair = [("pycontain", lambda: pycontain_lifecycle(root)), ("runc", runc.lifecycle)]
        for name, once in pair if i % 2 else pair[::-1]:
            start = time.perf_counter()
            once()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def show(title: str, times: dict[str, list[float]], mine: str, ref: str) -> float:
    print(f"\n{title}")
    for name, values in times.items():
        print(f"  {name:<28} median {statistics.median(values):6.1f} ms  min "
              f"{min(values):6.1f}  max {max(values):6.1f}")
    ratio = paired_ratio(times, mine, ref)
    per_round = sorted(x / y for x, y in zip(times[mine], times[ref], strict=True))
    quartiles = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
    print(f"  {mine} / {ref}: {ratio:.2f}x (per-round ratios: quartiles {quartiles[0]:.2f} - "
          f"{quartiles[2]:.2f})")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="paired rounds (default 40)")
    parser.add_argument("--loop", type=int, default=100, help="containers in the loop (100)")
    parser.add_argument("--rootfs", help="the container root (default: the embedded rootfs)")
    args = parser.parse_args()
    try:
        lab.require_ready()
    except PycontainError as e:
        print(f"lifecycle: {e}", file=sys.stderr)
        return 2
    root = os.path.realpath(args.rootfs or rootfs.ensure())
    compileall.compile_dir(Path(pycontain.__file__).parent, quiet=1)  # as start_latency does
    skipped = start_latency.install_missing(["runc"])
    if skipped:
        print(f"lifecycle: {skipped['runc']}", file=sys.stderr)
        return 1
    view = ""
    if start_latency.is_hybrid():  # the same view start_latency measures in: comparable
        start_latency.enter_v1_only_cgroup_view()
        view = "both ran in a private mount + cgroup namespace with a v1-only /sys/fs/cgroup"

    signal.signal(signal.SIGTERM, start_latency.interrupted)  # clean up on SIGTERM too
    workdir = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    os.environ[settings.RUN_DIR_VARIABLE] = str(workdir / "run")  # our containers only
    runc = Runc(workdir, root)
    bundle = oci_true_bundle(workdir, root)
    ours = OciTrue([str(Path(sys.executable).parent / "pycontain-oci")], bundle,
                   workdir / "oci-state")
    runc_true = OciTrue(["runc"], bundle, workdir / "runc-true-state")
    before = set(lab.leftovers())
    held: list[str] = []
    try:
        ours()  # warm-up
        runc_true()
        oci = measure({"pycontain-oci": ours, "runc": runc_true}, args.rounds)
        pycontain_lifecycle(root)  # warm-up
        runc.lifecycle()
        detach = measure({"pycontain run -d + rm -f": lambda: pycontain_lifecycle(root),
                          "runc create/start/delete": runc.lifecycle}, args.rounds)
        mine = pycontain_detach(root)
        held.append(mine)
        theirs = runc.create_start()
        execs = measure({"pycontain exec": lambda: run_quiet(
                             pycontain_argv("exec", mine, "/bin/true"), "pycontain exec"),
                         "runc exec": lambda: run_quiet(
                             runc.runc("exec", theirs, "/bin/true"), "runc exec")}, args.rounds)
        run_quiet(pycontain_argv("rm", "-f", held.pop()), "pycontain rm -f")
        runc.delete(theirs)
        looped = loop(args.loop, root, runc)
        left = sorted(set(lab.leftovers()) - before)
        containers = state.ids()
    finally:
        for container_id in held:
            subprocess.run(pycontain_argv("rm", "-f", container_id), capture_output=True)
        runc.delete_all()
        ours.delete_all()
        runc_true.delete_all()
        for path in state.leftover_containers():
            state.remove_container(path)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"the detached lifecycle, namespaces {','.join(NAMESPACES)}, {args.rounds} paired "
          f"rounds, {os.cpu_count()} cores" + (f"\n{view}" if view else ""))
    show("run -d + rm -f against runc create + start + delete (sleep 600)", detach,
         "pycontain run -d + rm -f", "runc create/start/delete")
    show("exec /bin/true into a running container", execs, "pycontain exec", "runc exec")
    show("OCI create + start + delete of /bin/true, start to exit (lesson 24; target <= 1.0x)",
         oci, "pycontain-oci", "runc")
    print(f"\n{args.loop} containers started and removed one after the other "
          "(median of each tenth, ms)")
    for name, values in looped.items():
        print(f"  {name:<10} " + " ".join(f"{t:5.0f}" for t in tenths(values))
              + f"   total {sum(values) / 1000:.1f} s")
    first, last = (statistics.median(looped["pycontain"][s]) for s in
                   (slice(0, args.loop // 10 or 1), slice(-(args.loop // 10 or 1), None)))
    print(f"  pycontain's last tenth / first tenth: {last / first:.2f}x (linear: about 1.00)")
    print("  left in its run directory: " + (", ".join(containers) or "nothing"))
    print("  new on the machine since the start (anyone's: another user's work shows here too): "
          + (", ".join(left) or "nothing (no cgroup, link, netns, mount, dir)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
