"""The checks of lesson 17, shape network bandwidth.

`check_egress_cap` measures what a container sends to the host's end of the bridge
(`observe.throughput.measure`), started by the learner's `capped(argv)`, and passes when the
host received `TARGET_MBIT` Mbit/s within `TOLERANCE`, counted from the first byte to the
last. Before it waits for any byte it looks at the kernel: the container must be on the bridge
and its egress shaped (an IFB with a tbf behind its veth); the tbf's own rate, read back with
tc, tells a rate in bytes (tc's `mbps`) from one in bits. It names the wrong turns seen when
the exercise was tried before any byte is counted: a container off the bridge, a rate on what
it receives instead of what it sends, no rate, another command than the sender, a Result (a
container that has ended) instead of the running container. If `capped` raises, the
containers it started are stopped (`checks.attempt`).

The stretch, `check_ingress_cap`, is the other direction: `capped_in(argv)` starts a
*receiver* whose ingress is held to `STRETCH_MBIT`; this process sends to it
(`throughput.measure_received`) and the container's receiver counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pycontain import runtime
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.checks.exercise import exercise
from pycontain.network import shaping

TARGET_MBIT = 10
TOLERANCE = 0.15
SECONDS = 3.0
#: the stretch: what the container may receive, and the measure's slack (the tbf's own rate
#: must be within TOLERANCE); TCP into a 50 ms tbf queue wobbles more than out of an IFB
STRETCH_MBIT = 5
STRETCH_TOLERANCE = 0.3
STRETCH_SECONDS = 2.0

EGRESS_HINTS = (
    "Which of the two rates in \"Where the rate is kept\" holds what a container *sends*? "
    "And where must the container be for the host to reach it, and for a rate to have a "
    "veth to live on?",
    "tc's units (\"tc's units\"): bits per second are kbit, mbit, gbit; mbps is bytes. The "
    "container must still run when your function returns: the check's receiver counts what "
    "it sends afterwards.",
)
INGRESS_HINTS = (
    "Mirror the exercise: the container now receives. From whose point of view are ingress "
    "and egress named, and which qdisc in \"Where the rate is kept\" paces what the host "
    "sends it?",
    "The check connects to the container's address on the bridge and sends; the receiver it "
    "gives you must run as given, listening, when your function returns.",
)
RUNNING = ("return the container, still running (what pycontain.spawn returns): the check's "
           "receiver counts what it sends after your function has returned; a Result is what "
           "a container leaves once it has ended")


def _tbf_rate_bps(link: str) -> int | None:
    """The rate of the tbf on `link`, as tc prints it (`rate 10Mbit`), in bits per second."""
    found = re.search(r"\btbf\b.*?\brate (\d+(?:\.\d+)?[KMG]?bit)", shaping.show(link))
    return None if found is None else shaping.parse_rate(found[1])


def _stopped(box: runtime.Container, message: str) -> CheckFailed:
    box.kill()
    box.wait()
    return CheckFailed(message)


def _started_on_the_bridge(name: str, func: Callable[[list[str]], object], argv: list[str],
                           role: str, why: str) -> runtime.Container:
    """`func(argv)`'s container, running `argv` as given, on the bridge (with a veth); else a
    CheckFailed, the container stopped."""
    box = attempt(f"{name}(argv)", func, argv, returns=runtime.Container, instead=RUNNING)
    assert isinstance(box, runtime.Container)
    if list(box.spec.argv) != argv:
        raise _stopped(box, f"the container runs {list(box.spec.argv)!r}, not the {role} the "
                            f"check gave {name}(argv): start argv as given")
    if box.network is None or box.network.veth is None:
        raise _stopped(box, f"the container is not on the bridge: {why}")
    return box


@exercise(hints=EGRESS_HINTS)
def check_egress_cap(capped: Callable[[list[str]], object]) -> Passed:
    """`capped(argv)` starts `argv` in a container whose egress is held to TARGET_MBIT."""
    from pycontain.observe import throughput

    asked: list[int | None] = []

    def start(argv: list[str]) -> runtime.Container:
        box = _started_on_the_bridge("capped", capped, argv, "sender",
                                     "the sender reaches the host at the bridge's end, and a "
                                     "rate is shaped on the container's veth there")
        assert box.network is not None and box.network.veth is not None  # checked there
        if box.network.ifb is None:
            shaped = _tbf_rate_bps(box.network.veth)
            raise _stopped(box, (
                f"its veth has a tbf of {shaping.format_rate(shaped)} as its root qdisc: that "
                "paces what the host sends the container, what it receives. What it sends "
                "arrives at the host, where no qdisc queues it" if shaped is not None else
                "nothing shapes the container's veth: no rate was asked for what it sends"))
        asked.append(_tbf_rate_bps(box.network.ifb))
        return box

    for _ in range(2):
        run = throughput.measure(seconds=SECONDS, start=start)
        rate = asked[-1] if asked else None
        seen = (f"the host received {run.mbit:.2f} Mbit/s from the container "
                f"({run.total_bytes} bytes in {run.seconds:.2f} s, first byte to last)")
        if rate is not None and abs(rate / 1e6 - TARGET_MBIT) > TOLERANCE * TARGET_MBIT:
            bytes_hint = (": tc's mbps is megabytes per second, eight times as much"
                          if rate == 8 * TARGET_MBIT * 10**6 else "")
            raise CheckFailed(f"{seen}; the tbf behind its veth says rate "
                              f"{shaping.format_rate(rate)}, and the target is {TARGET_MBIT} "
                              f"Mbit/s{bytes_hint}")
        if abs(run.mbit - TARGET_MBIT) <= TOLERANCE * TARGET_MBIT:
            return Passed(f"{seen}: within {TOLERANCE:.0%} of {TARGET_MBIT} Mbit/s")
        if run.mbit > TARGET_MBIT:
            break
        # the right rate in the kernel, and less arrived: a tbf only holds back, so a busy
        # machine slowed the sender itself (or TCP's recovery did); measure once more
    raise CheckFailed(
        f"{seen}; the target is {TARGET_MBIT} Mbit/s within {TOLERANCE:.0%}" + (
            ", twice, under the right rate: a tbf only holds back, so "
            "this machine was too busy for the sender to reach it. Run the check again when "
            "it is quieter" if run.mbit < TARGET_MBIT else ""))


@exercise(hints=INGRESS_HINTS, stretch=True)
def check_ingress_cap(capped_in: Callable[[list[str]], object]) -> Passed:
    """Stretch: `capped_in(argv)` starts the receiver `argv` in a container on the bridge
    whose ingress (what it receives) is held to STRETCH_MBIT; the check sends to it."""
    from pycontain.observe import throughput

    asked: list[int] = []

    def start(argv: list[str]) -> runtime.Container:
        box = _started_on_the_bridge("capped_in", capped_in, argv, "receiver",
                                     "the check sends to its address there, and a rate is "
                                     "shaped on its veth")
        assert box.network is not None and box.network.veth is not None  # checked there
        rate = _tbf_rate_bps(box.network.veth)
        if rate is None:
            raise _stopped(box, (
                "its veth sends what arrives to an IFB whose tbf paces what the container "
                "*sends*; the check sends to it, and nothing paces that" if box.network.ifb else
                "nothing shapes the container's veth: no rate was asked for what it receives"))
        if abs(rate / 1e6 - STRETCH_MBIT) > TOLERANCE * STRETCH_MBIT:
            raise _stopped(box, f"the tbf on its veth says rate {shaping.format_rate(rate)}, "
                                f"and the target is {STRETCH_MBIT} Mbit/s" + (
                                    ": tc's mbps is megabytes per second, eight times as much"
                                    if rate == 8 * STRETCH_MBIT * 10**6 else ""))
        asked.append(rate)
        return box

    run = throughput.measure_received(start, seconds=STRETCH_SECONDS)
    seen = (f"the container received {run.mbit:.2f} Mbit/s from the host ({run.total_bytes} "
            f"bytes in {run.seconds:.2f} s, first byte to last; its veth's tbf: "
            f"{shaping.format_rate(asked[0])})")
    expect(abs(run.mbit - STRETCH_MBIT) <= STRETCH_TOLERANCE * STRETCH_MBIT,
           f"{seen}; the target is {STRETCH_MBIT} Mbit/s within {STRETCH_TOLERANCE:.0%}")
    return Passed(f"{seen}: the host's end of the veth queues what leaves it for the "
                  "container, so a tbf there holds what the container receives")
