"""How close does the kernel hold a container to the CPU it asked for? cpu.max and cpu.weight.

A benchmark, not a test: it prints numbers and never fails because of them (lesson 15).

- **cpu.max.** For each `--cpus` value it runs `pycontain run --cpus X -- <burner>` (the
  venv's CLI; the burner is `workloads.burn`, which spins for `--seconds` and reports its own
  CPU time) and compares the CPU it got, as a share of its wall time, with X. Each value runs
  twice per round: as asked, and with `--cpu-weight 10000` as well, so that on a busy machine
  other work does not starve the burner below its cap: that row measures the cap alone.
- **cpu.weight.** For each pair of weights it runs two burners pinned to one CPU, each in a
  container of its own, competing for `--seconds` (`observe.sharing.share_experiment`), and
  compares the ratio of the CPU they got with the ratio of the weights.

Targets: measured within 5 % of the cap (the heavy-weight rows), and within 10 % of the
weight ratio. The load average is printed with each round: a busy machine explains a miss.
Medians over `--rounds`. Results go to bench/results/cpu_accuracy-*.json unless --no-save.

Usage: bench/cpu_accuracy.py [--rounds 3] [--seconds 3] [--cpus 0.25,0.5,1]
       [--weights 100:300,100:400]
(as root: in the lab VM, or with PYCONTAIN_ALLOW_HOST=1; `make bench` runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pycontain import lab, workloads
from pycontain.observe import sharing

RESULTS = Path(__file__).resolve().parent / "results"
CAP_TARGET, RATIO_TARGET = 0.05, 0.10
#: the `pycontain` command next to this interpreter (a venv's), else the module (the v2 guest)
ENTRY = Path(sys.executable).with_name("pycontain")
CLI = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "pycontain"]


def capped(cpus: float, seconds: float, *, heavy: bool) -> float:
    """The CPUs a burner got under `pycontain run --cpus cpus` (its CPU time / wall time)."""
    weight = ["--cpu-weight", "10000"] if heavy else []
    done = subprocess.run([*CLI, "run", "--cpus", str(cpus), *weight, "--",
                           *workloads.burn_argv(seconds)], capture_output=True, text=True,
                          timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"pycontain run failed ({done.returncode}): {done.stderr.strip()}")
    cpu_s, wall_s = workloads.burned(done.stdout)
    return cpu_s / wall_s


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cpus", default="0.25,0.5,1", help="--cpus values to measure")
    parser.add_argument("--weights", default="100:300,100:400", help="weight pairs A:B")
    parser.add_argument("--no-save", action="store_true",
                        help=f"do not write the JSON results to {RESULTS}")
    args = parser.parse_args()
    lab.require_ready()
    caps = [float(c) for c in args.cpus.split(",")]
    pairs = [tuple(int(w) for w in pair.split(":")) for pair in args.weights.split(",")]
    print(f"cgroup mode {lab.cgroup_mode()}, kernel {platform.release()}, {os.cpu_count()} "
          f"CPUs; {args.rounds} rounds of {args.seconds:g} s\n")
    got: dict[str, list[float]] = {}
    for n in range(args.rounds):
        for cpus in caps:
            for heavy in (False, True):
                key = f"--cpus {cpus:g}" + (" --cpu-weight 10000" if heavy else "")
                got.setdefault(key, []).append(capped(cpus, args.seconds, heavy=heavy))
        for first, second in pairs:
            run = sharing.share_experiment(first, second, seconds=args.seconds)
            got.setdefault(f"cpu.weight {first}:{second}", []).append(run.ratio(*run.burned_s))
        print(f"round {n + 1}: load average {load()}")
    rows = []
    print(f"\n{'what':<34} {'asked':>8} {'measured (median)':>18} {'error':>8} {'target':>8}"
          f"  all rounds")
    for key, values in got.items():
        target: float | None
        if key.startswith("cpu.weight"):
            first, second = (int(w) for w in key.split()[1].split(":"))
            asked, target, unit = second / first, RATIO_TARGET, ":1"
        else:  # a plain --cpus row is informative: it shares the CPU with all else that runs
            asked, unit = float(key.split()[1]), " CPUs"
            target = CAP_TARGET if "--cpu-weight" in key else None
        measured = statistics.median(values)
        error = (measured - asked) / asked
        verdict = "-" if target is None else "met" if abs(error) <= target else "missed"
        rows.append({"what": key, "asked": asked, "measured": measured, "error": error,
                     "values": values, "target": target})
        print(f"{key:<34} {asked:7.3g}{unit:<5} {measured:11.3f}{unit:<5} {error:+7.1%} "
              f"{verdict:>8}  {', '.join(f'{v:.3f}' for v in values)}")
    print(f"\ntargets: a cap within {CAP_TARGET:.0%} (the --cpu-weight 10000 rows; a plain "
          f"--cpus row also shares the CPU with whatever else runs), a weight ratio within "
          f"{RATIO_TARGET:.0%}")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"cpu_accuracy-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps({"mode": lab.cgroup_mode(), "kernel": platform.release(),
                                   "seconds": args.seconds, "rows": rows}, indent=2) + "\n")
        print(f"results: {out}")


if __name__ == "__main__":
    main()
