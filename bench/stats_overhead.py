"""What does `pycontain stats` cost? CPU time of the streaming command for N containers at 1 Hz.

A benchmark, not a test: it prints numbers and never fails because of them.

It starts `--containers` detached containers (`sleep`, a memory limit each, half of them on the
bridge so that their veth is read too) in a run directory of its own, runs `pycontain stats`
(the real command, stdout to /dev/null) for `--seconds` seconds, and reads the command's CPU
time (utime + stime, /proc/<pid>/stat) after its start-up and at the end: the difference over
the wall time between is its steady cost, as a share of one core. For comparison it also times
one `stats --no-stream` (start-up, two readings 0.5 s apart, exit). The containers are removed
at the end, also after Ctrl-C.

Target (issue 14): 10 containers at 1 Hz <= 1 % of one core.

Usage: bench/stats_overhead.py [--containers 10] [--seconds 20] [--no-save]
(as root; `make bench` runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pycontain import lab, settings, state

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_CPU_PERCENT = 1.0
PYCONTAIN = [sys.executable, "-m", "pycontain"]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of `pid`, in seconds (proc_pid_stat(5), fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_containers(count: int) -> list[str]:
    ids = []
    for i in range(count):
        network = ["--network", "bridge"] if i % 2 else []
        done = subprocess.run([*PYCONTAIN, "run", "-d", "--memory", "64M", *network, "--",
                               "sleep", "600"], capture_output=True, text=True, check=True)
        ids.append(done.stdout.strip())
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-save", action="store_true",
                        help=f"do not write the JSON results to {RESULTS}")
    args = parser.parse_args()
    lab.require_ready()
    root = tempfile.mkdtemp(prefix="pycontain-bench-run-")
    os.environ[settings.RUN_DIR_VARIABLE] = root
    try:
        ids = start_containers(args.containers)
        started = time.monotonic()
        subprocess.run([*PYCONTAIN, "stats", "--no-stream"], stdout=subprocess.DEVNULL,
                       check=True)
        once_s = time.monotonic() - started
        with open(os.devnull, "w") as null:
            streaming = subprocess.Popen([*PYCONTAIN, "stats"], stdout=null)
            try:
                time.sleep(3.0)  # past the interpreter's start-up and the first readings
                cpu0, wall0 = cpu_s(streaming.pid), time.monotonic()
                time.sleep(args.seconds)
                cpu1, wall1 = cpu_s(streaming.pid), time.monotonic()
            finally:
                streaming.terminate()
                streaming.wait()
        percent = 100 * (cpu1 - cpu0) / (wall1 - wall0)
        row = {"containers": len(ids), "seconds": wall1 - wall0, "cpu_s": cpu1 - cpu0,
               "cpu_percent": percent, "no_stream_s": once_s,
               "cgroup_mode": lab.cgroup_mode(), "kernel": platform.release(),
               "cpus": os.cpu_count()}
        print(f"pycontain stats, {len(ids)} containers at 1 Hz for {row['seconds']:.1f} s: "
              f"{row['cpu_s'] * 1000:.0f} ms of CPU = {percent:.3f} % of one core "
              f"(target <= {TARGET_CPU_PERCENT:g} %: "
              f"{'met' if percent <= TARGET_CPU_PERCENT else 'NOT met'}); "
              f"`stats --no-stream` took {once_s:.2f} s; cgroup mode {row['cgroup_mode']}, "
              f"kernel {row['kernel']}, {row['cpus']} CPUs")
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / "stats_overhead.json").write_text(json.dumps(row, indent=1) + "\n")
    finally:
        for container_id in state.ids():
            state.remove(container_id)
        for path in state.leftover_containers():
            state.remove_container(path)
        names = os.path.join(root, state.NAMES)
        if os.path.isdir(names):
            os.rmdir(names)
        os.rmdir(root)


if __name__ == "__main__":
    main()
