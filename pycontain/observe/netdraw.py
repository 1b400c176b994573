"""Lesson 08's live views of the network: the topology as the kernel holds it, ping round-trip
times, and a cable to pull.

`topology()` reads links, addresses and bridge ports from the host's namespace and from each
container's (through `net.links`), and matches each veth's two ends by the peer index the
kernel reports (IFLA_LINK); `draw()` pictures it. `ping_times()` reads ping(8)'s
`time=0.081 ms` lines and `rtt_plot()` draws them. `cable_toggle()` sets the host end of a
container's veth down and up (`ip link set … down`): the container's cable, pulled.

See also: ip-link(8), bridge(8), ping(8); ipywidgets for the toggle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pycontain import settings
from pycontain.namespaces import net
from pycontain.observe.plot import OTHER_COLOURS, Picture

_TIME = re.compile(r"seq=(\d+) .*time=([\d.]+) ms")


def topology(boxes: Mapping[str, int]) -> dict[str, Any]:
    """The host's `pycontain-` links and each box's links (`{"name": pid}`), from the kernel."""
    host = [link for link in net.links() if link["name"].startswith(settings.PREFIX)]
    return {"host": host, "boxes": {name: net.links(pid) for name, pid in boxes.items()}}


def _label(link: dict[str, Any]) -> str:
    state = "UP" if link["up"] else "DOWN"
    return "\n".join([f"{link['name']} ({state})", *link["addresses"]])


def draw(view: dict[str, Any]) -> Picture:
    """Boxes for the network namespaces, the bridge with its ports, a line for each veth pair."""
    boxes = list(view["boxes"].items())
    fig = Picture(figsize=(8, 2.2 + 1.6 * max(1, len(boxes))), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    height = 2 * max(1, len(boxes))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.8, height + 0.4)
    ax.add_patch(_box((0.1, -0.6), 5.2, height + 0.9, "#eef3fb"))
    ax.text(0.3, height + 0.05, "host network namespace", fontsize=9, weight="bold")
    bridges = [link for link in view["host"] if link["kind"] == "bridge"]
    by_index = {link["index"]: link for link in view["host"]}
    for bridge in bridges:
        ax.text(2.3, height / 2, _label(bridge), fontsize=8, va="center", ha="right", ma="left",
                bbox={"boxstyle": "round", "fc": "#ffe8b0"})  # its ports' lines start at 2.4
    for row, (name, links) in enumerate(boxes):
        y = height - 1 - 2 * row
        ax.add_patch(_box((6.2, y - 0.8), 3.7, 1.6, "#eaf6ea"))
        ax.text(6.3, y + 0.55, f"{name}'s network namespace", fontsize=9, weight="bold")
        for column, link in enumerate(sorted(links, key=lambda k: k.get("peer") is None)):
            x = 6.3 + 1.9 * column
            colour = OTHER_COLOURS[row % len(OTHER_COLOURS)]
            ax.text(x, y - 0.1, _label(link), fontsize=8, va="center",
                    bbox={"boxstyle": "round", "fc": "white", "ec": colour})
            veth = by_index.get(link.get("peer"))
            if veth is None:
                continue
            ax.text(3.4, y, _label(veth), fontsize=8, va="center",
                    bbox={"boxstyle": "round", "fc": "white", "ec": colour})
            ax.plot([5.0, x], [y, y], color=colour, linestyle="-" if veth["up"] else ":",
                    linewidth=2)
            if veth["master"]:
                ax.plot([2.4, 3.4], [height / 2, y], color="grey", linewidth=1)
    ax.set_title("links, addresses and bridge ports, as the kernel lists them "
                 "(dotted: a cable that is down)", fontsize=9)
    return fig


def _box(corner: tuple[float, float], width: float, height: float, colour: str) -> Any:
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch(corner, width, height, boxstyle="round,pad=0.05", fc=colour,
                          ec="#999999")


def ping_times(output: str) -> list[tuple[int, float]]:
    """(sequence number, round-trip time in ms) of each reply in ping(8)'s output.

    >>> ping_times("64 bytes from 10.207.0.2: seq=0 ttl=64 time=0.081 ms\\n"
    ...            "64 bytes from 10.207.0.2: seq=2 ttl=64 time=0.05 ms")
    [(0, 0.081), (2, 0.05)]
    """
    return [(int(m[1]), float(m[2])) for m in _TIME.finditer(output)]


def rtt_plot(series: Mapping[str, Sequence[tuple[int, float]]], title: str) -> Picture:
    """Round-trip times against the ping's sequence number, one line per series; a missing
    sequence number is a lost ping, and the line breaks there."""
    fig = Picture(figsize=(7, 3), layout="constrained")
    ax = fig.add_subplot()
    for colour, (label, times) in zip(OTHER_COLOURS, series.items(), strict=False):
        got = dict(times)
        last = max(got, default=-1)
        ax.plot(range(last + 1), [got.get(i, float("nan")) for i in range(last + 1)],
                marker="o", label=label, color=colour)
    ax.set_xlabel("ping number (seq)")
    ax.set_ylabel("round-trip time (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    ax.set_title(title)
    return fig


def cable_toggle(veth: str, ping: Callable[[], str]) -> Any:
    """A toggle that sets the host end `veth` up or down, then runs `ping()` and shows its
    output. Without a front end (CI) it still builds and runs once, plugged in."""
    import html

    import ipywidgets

    cable = ipywidgets.ToggleButton(value=True, description="cable plugged in", icon="plug")
    out = ipywidgets.HTML()

    def refresh(_: object = None) -> None:
        net.set_up(veth, cable.value)
        cable.description = "cable plugged in" if cable.value else "cable pulled out"
        out.value = f"<pre>{html.escape(ping())}</pre>"

    cable.observe(refresh, names="value")
    refresh()
    return ipywidgets.VBox([cable, out])
