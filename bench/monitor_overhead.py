"""What does watching a cgroup cost? CPU time and clock jitter of
`pycontain.observe.monitor.Monitor`.

A benchmark, not a test: it prints numbers and never fails because of them.

It makes two empty cgroups below this process's own (`pycontain-bench-…`, in the memory and the
pids hierarchy on v1/hybrid, one cgroup on v2), then, for each rate, runs a Monitor sampling
their memory usage (`memory.current`, v1 `memory.usage_in_bytes`) and `pids.current` for
`--seconds` seconds. The cgroups stay empty: a read costs the same whatever the value. It reports:

    cpu %      CPU time of the sampling thread (its own CPU clock, pthread_getcpuclockid(3))
               as a share of one core, over the run
    rate       samples kept per second, against the rate asked for
    jitter     |interval between consecutive samples - period|: median, 99th percentile, max
    missed     ticks skipped because a sample came too late

Target (issue 4): >= 20 Hz at <= 2 % of one core. The cgroups are removed at the end, also
after Ctrl-C.

Usage: bench/monitor_overhead.py [--seconds 10] [--rates 20,50,100,200] [--no-save]
(as root; `make bench` runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from pycontain import lab, settings
from pycontain.observe.monitor import Monitor, Probe

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_HZ, TARGET_CPU_PERCENT = 20.0, 2.0


def own_cgroup_dirs() -> dict[str, Path]:
    """This process's own cgroup directory for 'memory' and 'pids' (the same one on v2)."""
    mode = lab.cgroup_mode()
    found = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if mode == "v2" and not controllers:
            for c in ("memory", "pids"):
                found[c] = Path("/sys/fs/cgroup") / path.lstrip("/")
        for c in controllers.split(","):
            if c in ("memory", "pids"):
                found[c] = Path("/sys/fs/cgroup") / c / path.lstrip("/")
    return found


def make_cgroups() -> tuple[list[Path], list[Probe]]:
    """Create the empty cgroups to watch; return them and the probes that sample them."""
    name = f"{settings.PREFIX}bench-{os.getpid()}"
    made: list[Path] = []
    dirs = own_cgroup_dirs()
    for controller in ("memory", "pids"):
        path = dirs[controller] / name
        if path not in made:
            path.mkdir()
            made.append(path)
    if lab.cgroup_mode() == "v2":  # a fresh child has the controllers its parent hands down
        memory_file = "memory.current"
    else:
        memory_file = "memory.usage_in_bytes"
    probes = [Probe(memory_file, str(dirs["memory"] / name / memory_file)),
              Probe("pids.current", str(dirs["pids"] / name / "pids.current"))]
    return made, probes


def measure(probes: list[Probe], hz: float, seconds: float) -> dict[str, float]:
    monitor = Monitor(probes, hz=hz).start()
    assert monitor._thread is not None and monitor._thread.ident is not None
    clock = time.pthread_getcpuclockid(monitor._thread.ident)
    cpu0, wall0 = time.clock_gettime(clock), time.monotonic()
    time.sleep(seconds)
    cpu1, wall1 = time.clock_gettime(clock), time.monotonic()
    monitor.stop()
    times = monitor.times_s()
    period = 1 / hz
    jitter_ms = sorted(abs(b - a - period) * 1000 for a, b in zip(times, times[1:], strict=False))
    return {
        "hz": hz,
        "cpu_percent": 100 * (cpu1 - cpu0) / (wall1 - wall0),
        "rate_hz": (len(times) - 1) / (times[-1] - times[0]),
        "jitter_median_ms": statistics.median(jitter_ms),
        "jitter_p99_ms": jitter_ms[int(0.99 * (len(jitter_ms) - 1))],
        "jitter_max_ms": jitter_ms[-1],
        "missed": monitor.missed,
        "samples": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="20,50,100,200", help="sampling rates in Hz")
    parser.add_argument("--no-save", action="store_true",
                        help=f"do not write the JSON results to {RESULTS}")
    args = parser.parse_args()
    lab.require_ready()
    made, probes = make_cgroups()
    rows = []
    try:
        print(f"sampling {', '.join(p.path for p in probes)}\n"
              f"for {args.seconds:g} s per rate; cgroup mode {lab.cgroup_mode()}, "
              f"kernel {platform.release()}, {os.cpu_count()} CPUs\n")
        print(f"{'asked':>7} {'got':>8} {'cpu % of 1 core':>16} {'jitter median':>14} "
              f"{'p99':>8} {'max':>8} {'missed':>7}")
        for hz in (float(r) for r in args.rates.split(",")):
            row = measure(probes, hz, args.seconds)
            rows.append(row)
            print(f"{hz:5g}Hz {row['rate_hz']:6.2f}Hz {row['cpu_percent']:15.3f}% "
                  f"{row['jitter_median_ms']:11.3f} ms {row['jitter_p99_ms']:5.2f} ms "
                  f"{row['jitter_max_ms']:5.2f} ms {row['missed']:7d}")
    finally:
        for path in reversed(made):
            path.rmdir()
    at_target = next((r for r in rows if r["hz"] == TARGET_HZ), None)
    if at_target:
        ok = (at_target["rate_hz"] >= 0.98 * TARGET_HZ
              and at_target["cpu_percent"] <= TARGET_CPU_PERCENT)
        print(f"\ntarget >= {TARGET_HZ:g} Hz at <= {TARGET_CPU_PERCENT:g} % of one core: "
              f"{'met' if ok else 'NOT met'}")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"monitor_overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps({"mode": lab.cgroup_mode(), "kernel": platform.release(),
                                   "seconds": args.seconds, "rows": rows}, indent=2) + "\n")
        print(f"results: {out}")


if __name__ == "__main__":
    main()
