"""Shaping a container's bandwidth: traffic control on the host end of its veth (lesson 17, coming).

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

The IFB is a link of the host named `pycontain-i…`: it does not go with the container's
namespace as the veth does, so `release()` deletes it, and a leaked one is a `pycontain-` link
that `lab.kinds()` ("link") finds and removes. On cgroup v1, `net_cls.classid` tags a cgroup's
packets for a classifier; the modern way to class a cgroup's traffic is eBPF attached to the
cgroup, or nftables `socket cgroupv2`.

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

from pycontain import helper
from pycontain.errors import SpecError, SyscallError
from pycontain.settings import IFB_PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
                             "bps/kbps/mbps; 10mb is neither (lesson 17, coming)")
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


# ---- speaking netlink, from a helper process ---------------------------------------------------

def shape(veth: str, egress_bps: int | None, ingress_bps: int | None) -> str | None:
    """Limit what the container behind the host's link `veth` sends (`egress_bps`) and
    receives (`ingress_bps`), in bits per second; return the IFB made for egress, or None.
    `unshape(ifb)` removes it; the qdiscs on the veth go with the veth."""
    ifb = None
    if egress_bps is not None:
        ifb = f"{IFB_PREFIX}{secrets.token_hex(2)}"  # 15 bytes: IFNAMSIZ with its NUL
        while os.path.exists(f"/sys/class/net/{ifb}"):
            ifb = f"{IFB_PREFIX}{secrets.token_hex(2)}"
    try:
        helper.in_fresh_process(tc, veth, ifb, egress_bps, ingress_bps, timeout_s=60,
                                same_path=True)
    except BaseException:
        unshape(ifb)
        raise
    return ifb


def unshape(ifb: str | None) -> None:
    """Delete the IFB `ifb` (and its tbf with it); nothing when it is None or gone."""
    if ifb is not None and os.path.exists(f"/sys/class/net/{ifb}"):
        helper.in_fresh_process(tc, ifb, None, None, None, True, timeout_s=60, same_path=True)


def tc(link: str, ifb: str | None, egress_bps: int | None, ingress_bps: int | None,
       delete: bool = False) -> None:
    """`shape`'s other half, in its own process: the qdiscs, the filter and the IFB, over
    rtnetlink with pyroute2 (`tc qdisc add ... tbf`, `tc filter add ... action mirred`)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        def index(name: str) -> int:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise SpecError("veth", "a link of the host", name)
            return int(found[0])

        def tbf(at: int, rate_bps: int) -> None:
            ipr.tc("add", "tbf", at, rate=f"{rate_bps}bit", burst=burst_bytes(rate_bps),
                   latency=LATENCY)

        message: tuple[str, tuple[Any, ...]] = ("RTM_DELLINK", (link,))
        try:
            if delete:
                ipr.link("del", index=index(link))
                return
            veth = index(link)
            if ingress_bps is not None:  # leaves the host through the veth: its root qdisc
                message = ("RTM_NEWQDISC", (link, "tbf", format_rate(ingress_bps)))
                tbf(veth, ingress_bps)
            if egress_bps is not None and ifb is not None:
                message = ("RTM_NEWLINK", (ifb, "ifb"))
                ipr.link("add", ifname=ifb, kind="ifb")
                ipr.link("set", index=index(ifb), state="up")
                message = ("RTM_NEWQDISC", (ifb, "tbf", format_rate(egress_bps)))
                tbf(index(ifb), egress_bps)
                message = ("RTM_NEWQDISC", (link, "ingress"))
                ipr.tc("add", "ingress", veth, "ffff:")
                # match every packet (u32 key 0/0 at offset 0, any protocol: ETH_P_ALL) and
                # redirect it to the IFB's egress, where the tbf queues it
                message = ("RTM_NEWTFILTER", (link, "u32", "mirred", ifb))
                ipr.tc("add-filter", "u32", veth, parent="ffff:", protocol=0x0003, prio=1,
                       keys=["0x0/0x0+0"], target=0x10000,
                       action=[{"kind": "mirred", "direction": "egress",
                                "action": "redirect", "ifindex": index(ifb)}])
        except NetlinkError as e:
            raise SyscallError(message[0], message[1], e.code) from None


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
