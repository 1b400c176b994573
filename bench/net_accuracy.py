"""How close does tc hold a container's traffic to the egress and ingress rate it asked for?

A benchmark, not a test: it prints numbers and never fails because of them (lesson 17). For
each rate it runs a container on the bridge with `--egress-rate`-style shaping (an IFB with a
tbf behind its veth) that sends to a receiver on the host (`observe.throughput.measure`), and
one with an ingress rate (a tbf on its veth) whose receiver the host sends to; both count on
the receiving side from the first byte to the last (`workloads.receive`), so the container's
start is not counted. That is TCP payload: tbf counts whole Ethernet frames, and at a 1500-byte
MTU with TCP timestamps 1448 bytes of each 1514 are payload, so the ceiling is 95.6 % of the
rate (printed as "payload ceiling"). Target: within 5 % of the rate. Medians over `--rounds`.
Everything it makes (veths, IFBs, the bridge) goes with its containers.

Usage: bench/net_accuracy.py [--rounds 3] [--seconds 3] [--rates 2mbit,10mbit,50mbit]
(as root: in the lab VM, or with PYCONTAIN_ALLOW_HOST=1; `make bench` runs it)
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import pycontain
from pycontain import workloads
from pycontain.network import shaping
from pycontain.observe import throughput

#: TCP payload per full frame at a 1500-byte MTU: 1500 - 20 (IP) - 32 (TCP with timestamps),
#: of 1500 + 14 (Ethernet header), what tbf counts
PAYLOAD_SHARE = 1448 / 1514
PORT = 5201


def egress_mbit(rate: str | None, seconds: float) -> float:
    return throughput.measure(rate, seconds=seconds).mbit


def _listening(pid: int, port: int) -> bool:
    with open(f"/proc/{pid}/net/tcp") as f:  # that process's network namespace: proc(5)
        return any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A"
                   for row in f.readlines()[1:])


def ingress_mbit(rate: str, seconds: float) -> float:
    """Mbit/s the host sends into a container with `rate` as its ingress_rate, as the
    container's receiver counts it."""
    box = pycontain.spawn(workloads.receive_argv(PORT, 0.1, seconds + 60), network="bridge",
                          ingress_rate=rate)
    try:
        assert box.network is not None and box.network.address is not None
        deadline = time.monotonic() + 60
        while not _listening(box.pid, PORT) and time.monotonic() < deadline:
            time.sleep(0.02)
        workloads.send(box.network.address, PORT, seconds, 1 << 30, out=io.StringIO())
        got, took_s = workloads.received(box.wait(timeout_s=60).stdout)
    finally:
        if box.running:
            box.kill()
            box.wait()
    return got * 8 / took_s / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rates", default="2mbit,10mbit,50mbit")
    args = parser.parse_args()
    free = statistics.median(egress_mbit(None, args.seconds)
                             for _ in range(args.rounds))
    print(f"tc on the veth, TCP container <-> host end of the bridge, {args.seconds:g} s, median "
          f"of {args.rounds}; unshaped egress: {free:.0f} Mbit/s; load "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'direction':>9} {'requested':>10} {'payload ceiling':>16} {'measured':>9} "
          f"{'error':>7}  (Mbit/s)")
    for rate in args.rates.split(","):
        wanted = shaping.parse_rate(rate, "--rates") / 1e6
        for direction, measure in (("egress", egress_mbit), ("ingress", ingress_mbit)):
            measured = statistics.median(measure(rate, args.seconds) for _ in range(args.rounds))
            print(f"{direction:>9} {wanted:>10.2f} {wanted * PAYLOAD_SHARE:>16.2f} "
                  f"{measured:>9.2f} {(measured - wanted) / wanted:>+7.1%}")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
