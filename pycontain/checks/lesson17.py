"""The checks of lesson 17, shape network bandwidth.

`check_egress_cap` measures what a container sends to the host's end of the bridge
(`observe.throughput.measure`), started by the learner's `capped(argv)`, and passes when the
host received `TARGET_MBIT` Mbit/s within `TOLERANCE`, counted from the first byte to the
last. Before it waits for any byte it looks at the kernel: the container must be on the bridge
and its egress shaped (an IFB with a tbf behind its veth); the tbf's own rate, read back with
tc, tells a rate in bytes (tc's `mbps`) from one in bits.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pycontain import runtime
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.network import shaping

TARGET_MBIT = 10
TOLERANCE = 0.15
SECONDS = 3.0


def _tbf_rate_bps(link: str) -> int | None:
    """The rate of the tbf on `link`, as tc prints it (`rate 10Mbit`), in bits per second."""
    found = re.search(r"\btbf\b.*?\brate (\d+(?:\.\d+)?[KMG]?bit)", shaping.show(link))
    return None if found is None else shaping.parse_rate(found[1])


def _stopped(box: runtime.Container, message: str) -> CheckFailed:
    box.kill()
    box.wait()
    return CheckFailed(message)


def check_egress_cap(capped: Callable[[list[str]], object]) -> Passed:
    """`capped(argv)` starts `argv` in a container whose egress is held to TARGET_MBIT."""
    from pycontain.observe import throughput

    asked: list[int | None] = []

    def start(argv: list[str]) -> runtime.Container:
        box = attempt("capped(argv)", capped, argv, returns=runtime.Container,
                      instead="return what pycontain.spawn(argv, ...) returns, with argv as "
                              "given")
        assert isinstance(box, runtime.Container)
        if list(box.spec.argv) != argv:
            raise _stopped(box, f"the container runs {list(box.spec.argv)!r}, not the sender "
                                "the check gave capped(argv): start argv as given")
        if box.network is None or box.network.veth is None:
            raise _stopped(box, "the container is not on the bridge: the sender reaches the "
                                "host at the bridge's end, and a rate is shaped on the "
                                "container's veth there")
        if box.network.ifb is None:
            shaped = _tbf_rate_bps(box.network.veth)
            raise _stopped(box, (
                f"its veth has a tbf of {shaping.format_rate(shaped)} as its root qdisc: that "
                "paces what the host sends the container, what it receives. What it sends "
                "arrives at the host, where no qdisc queues it" if shaped is not None else
                "nothing shapes the container's veth: no rate was asked for what it sends"))
        asked.append(_tbf_rate_bps(box.network.ifb))
        return box

    run = throughput.measure(seconds=SECONDS, start=start)
    rate = asked[0] if asked else None
    seen = (f"the host received {run.mbit:.2f} Mbit/s from the container ({run.total_bytes} "
            f"bytes in {run.seconds:.2f} s, first byte to last)")
    if rate is not None and abs(rate / 1e6 - TARGET_MBIT) > TOLERANCE * TARGET_MBIT:
        bytes_hint = (": tc's mbps is megabytes per second, eight times as much"
                      if rate == 8 * TARGET_MBIT * 10**6 else "")
        raise CheckFailed(f"{seen}; the tbf behind its veth says rate "
                          f"{shaping.format_rate(rate)}, and the target is {TARGET_MBIT} "
                          f"Mbit/s{bytes_hint}")
    expect(abs(run.mbit - TARGET_MBIT) <= TOLERANCE * TARGET_MBIT,
           f"{seen}; the target is {TARGET_MBIT} Mbit/s within {TOLERANCE:.0%}")
    return Passed(f"{seen}: within {TOLERANCE:.0%} of {TARGET_MBIT} Mbit/s")
