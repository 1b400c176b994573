"""How close does the kernel hold a container's writes to the io.max wbps it asked for?

A benchmark, not a test: it prints numbers and never fails because of them (lesson 16). It makes
a loop device on a sparse file in a `pycontain-io-bench-…` temp dir (`fs.loop`), and for each
rate runs `pycontain run --device-write-bps /dev/loopN:RATE -- dd … oflag=direct` (O_DIRECT:
throttled on cgroup v1 and v2 alike) and compares MiB/s measured with MiB/s requested, the time
being dd's own, from its first write to its last (the container's start, which a slow machine
makes long, is not the kernel's throttling). Target: within 10 %. Medians over `--rounds`. The
loop device and its file are removed at the end.

Usage: bench/io_accuracy.py [--rounds 3] [--mib 16] [--rates 2M,4M,8M]
(as root: in the lab VM, or with PYCONTAIN_ALLOW_HOST=1; `make bench` runs it)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from pycontain.fs import loop
from pycontain.sizes import parse_size


def seconds_to_write(device: str, mib: int, rate: str | None) -> float:
    """dd's own time for one capped container writing `mib` MiB to `device` with O_DIRECT."""
    flags = ["--device-write-bps", f"{device}:{rate}"] if rate else []
    done = subprocess.run([sys.executable, "-m", "pycontain", "run", *flags, "--", "dd",
                           "if=/dev/zero", f"of={device}", "bs=1M", f"count={mib}",
                           "oflag=direct"], check=True, capture_output=True, text=True,
                          timeout=600)
    # coreutils: "16777216 bytes (17 MB, 16 MiB) copied, 8.00123 s, 2.1 MB/s"
    found = re.search(r"^(\d+) bytes .* copied, ([\d.]+) s", done.stderr, re.MULTILINE)
    if found is None or int(found[1]) != mib << 20:
        raise SystemExit(f"io_accuracy: dd said {done.stderr.strip()!r}")
    return float(found[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--rates", default="2M,4M,8M")
    args = parser.parse_args()
    where = tempfile.mkdtemp(prefix="pycontain-io-bench-")
    device = loop.attach(os.path.join(where, "disk.img"), (args.mib + 16) << 20)
    try:
        free = statistics.median(seconds_to_write(device, args.mib, None)
                                 for _ in range(args.rounds))
        print(f"io.max wbps on {device}, O_DIRECT, {args.mib} MiB, median of {args.rounds}; "
              f"uncapped: {args.mib / free:.0f} MiB/s; load {os.getloadavg()[0]:.2f}")
        print(f"{'requested MiB/s':>16} {'measured MiB/s':>15} {'error':>7}")
        for rate in args.rates.split(","):
            wanted = int(parse_size(rate, "--rates")) / (1 << 20)
            took = statistics.median(seconds_to_write(device, args.mib, rate)
                                     for _ in range(args.rounds))
            measured = args.mib / took
            print(f"{wanted:>16.2f} {measured:>15.2f} {(measured - wanted) / wanted:>+7.1%}")
    finally:
        loop.detach(device)
        shutil.rmtree(where)


if __name__ == "__main__":
    main()
