"""Shaping a container's bandwidth: traffic control on the host end of its veth (lesson 17).

cgroup v2 has no network controller, and `docker run` has no bandwidth flag. Bandwidth is
shaped by the kernel's traffic control (tc) on the container's interface, as the CNI
`bandwidth` plugin does for Kubernetes, and always on the host's end of the veth, where a root
inside the container cannot undo it:

- what the container *receives* (`ingress_rate`) leaves the host through the veth: a token
  bucket (tbf) as the veth's root qdisc holds it to the rate;
- what the container *sends* (`egress_rate`) arrives at the host through the veth, and the
  kernel queues only what it sends, never what it receives; so an `ingress` qdisc on the veth
  with a u32 filter that matches everything redirects it (the `mirred` action) to an IFB
  ("intermediate functional block") device, whose root tbf queues and paces it.

The bridge runs these `steps` in the one helper process that wires the veth (no second
interpreter per container). The IFB is a link of the host named `pycontain-i…`: it does not go
with the container's namespace as the veth does, so `release()` deletes it, and a leaked one is
a `pycontain-` link that `lab.kinds()` ("link") finds and removes. On cgroup v1,
`net_cls.classid` tags a cgroup's packets for a classifier; the modern way to class a cgroup's
traffic is eBPF attached to the cgroup, or nftables `socket cgroupv2`.

    >>> parse_rate("10mbit"), parse_rate("1.5mbps"), format_rate(parse_rate("250kbit"))
    (10000000, 12000000, '250kbit')

See also: tc(8), tc-tbf(8), tc-mirred(8), tc-u32(8), ip-link(8) (type ifb); the CNI bandwidth
plugin (containernetworking/plugins, plugins/meta/bandwidth).
Left out: htb classes, policing, per-flow fairness, burst and latency as options.
"""

from __future__ import annotations

import os
import re
import secrets

from pycontain.errors import SpecError
from pycontain.settings import IFB_PREFIX

#: tc's rate units (tc(8), "RATES"): bits per second, or bytes per second with "bps"
UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9,
         "bps": 8, "kbps": 8 * 10**3, "mbps": 8 * 10**6, "gbps": 8 * 10**9}
ACCEPTED = "a rate in tc's units such as 10mbit, 500kbit, 1gbit or 2mbps (bytes/s), 8kbit-10gbit"
#: the slowest and fastest rates accepted, in bits per second
MIN_RATE_BPS, MAX_RATE_BPS = 8_000, 10 * 10**9
#: how long a packet may wait in the bucket's queue before tbf drops it (tc-tbf(8) `latency`)
LATENCY = "50ms"


def parse_rate(text: object, parameter: str = "egress_rate") -> int:
    """A rate in tc's grammar, as bits per second; a `SpecError` naming `parameter` otherwise.

    >>> parse_rate("1gbit"), parse_rate("100kbps"), parse_rate("2.5Mbit")
    (1000000000, 800000, 2500000)
    >>> parse_rate("10mb")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `egress_rate` must be a rate in tc's units such as 10mbit, ...
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", str(text)) if isinstance(
        text, str) else None
    unit = match[2].lower() if match else ""
    if match is None or unit not in UNITS:
        raise SpecError(parameter, ACCEPTED, text,
                        hint="tc counts bits with bit/kbit/mbit/gbit and bytes with "
                             "bps/kbps/mbps; 10mb is neither (lesson 17)")
    rate = round(float(match[1]) * UNITS[unit])
    if not MIN_RATE_BPS <= rate <= MAX_RATE_BPS:
        raise SpecError(parameter, ACCEPTED, text)
    return rate


def format_rate(rate_bps: int) -> str:
    """A rate in bits per second as tc writes it, in the largest unit that keeps it whole.

    >>> format_rate(10_000_000), format_rate(1_500_000), format_rate(800)
    ('10mbit', '1500kbit', '800bit')
    """
    for unit, size in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if rate_bps % size == 0:
            return f"{rate_bps // size}{unit}"
    return f"{rate_bps}bit"


def burst_bytes(rate_bps: int) -> int:
    """The bucket's size: 20 ms at the rate, and at least four full-size frames.

    tbf lets a burst of this many bytes through at once; a bucket smaller than one frame would
    hold back every frame, and one smaller than the rate's worth per timer tick cannot reach
    the rate (tc-tbf(8)). CNI's bandwidth plugin asks for the burst; pycontain picks it.

    >>> burst_bytes(10_000_000), burst_bytes(1_000_000)
    (25000, 6056)
    """
    return max(rate_bps // 8 // 50, 4 * 1514)


# ---- the netlink steps ------------------------------------------------------------------------

def steps(veth: str, egress_bps: int | None, ingress_bps: int | None
          ) -> tuple[str | None, list[list[object]]]:
    """The IFB to make (or None) and the netlink steps (`namespaces.net.in_netns`) that limit
    what the container behind the host's link `veth` sends (`egress_bps`) and receives
    (`ingress_bps`), in bits per second. The bridge runs them in the helper that wires the veth;
    the qdiscs go with the veth, the IFB is deleted by name (["delete", ifb]).

    >>> ifb, wiring = steps("pycontain-ab12c", 5_000_000, None)
    >>> [step[0] for step in wiring], ifb.startswith(IFB_PREFIX), wiring[1][2:]
    (['ifb', 'tbf', 'redirect'], True, [5000000, 12500, '50ms'])
    """
    wiring: list[list[object]] = []
    if ingress_bps is not None:  # leaves the host through the veth: its root qdisc
        wiring.append(["tbf", veth, ingress_bps, burst_bytes(ingress_bps), LATENCY])
    ifb = None
    if egress_bps is not None:  # arrives through the veth: redirected to an IFB, paced there
        ifb = f"{IFB_PREFIX}{secrets.token_hex(2)}"  # 15 bytes: IFNAMSIZ with its NUL
        while os.path.exists(f"/sys/class/net/{ifb}"):
            ifb = f"{IFB_PREFIX}{secrets.token_hex(2)}"
        wiring += [["ifb", ifb], ["tbf", ifb, egress_bps, burst_bytes(egress_bps), LATENCY],
                   ["redirect", veth, ifb]]
    return ifb, wiring


def show(link: str) -> str:
    """What `tc qdisc show dev LINK` and `tc filter show dev LINK ingress` print: the shaping
    as tc itself describes it (the `tc` command, since its wording is what a learner types and
    reads in tc(8); pyroute2 would hand back raw netlink attributes)."""
    import subprocess

    out = []
    for argv in (["tc", "qdisc", "show", "dev", link],
                 ["tc", "filter", "show", "dev", link, "ingress"]):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        out.append(done.stdout.strip())
    return "\n".join(line for line in out if line)
