"""Figures for the lessons, drawn with plain matplotlib (lesson 01).

`namespace_grid` draws which processes share which namespace: one row per process, one column
per namespace type, each cell coloured by the namespace the process is in. Within a column, the
first row's namespace is grey and every other namespace gets its own colour, so "same colour in
a column" reads as "same namespace". Figures are `Picture`s, built without pyplot: a cell shows
each exactly once, as a PNG, whatever the matplotlib backend, and nothing stays open in the kernel.
`timeline` draws values sampled over time, one line per experiment (lesson 03: zombies).
`cgroup_timeline` draws cgroup files sampled by a `monitor.Monitor` against the limits that
bound them, each limit line labelled with the file that set it (lesson 14: memory.current
against `memory.max = 32 MiB`). `cpu_heatmap` draws how busy each CPU was over time, from
/proc/stat (lesson 18: a container pinned to one CPU). `filter_cost` draws what one getpid(2)
takes under 0, 1, 10 stacked seccomp filters (lesson 21).

See also: namespaces(7) for what the columns isolate; lesson 01.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from pycontain.observe.probe import NamespaceTable, namespace_table
from pycontain.procfs import NamespaceId

#: the first row's namespace in each column, then one colour per further namespace
FIRST_COLOUR = "#d9d9d9"
OTHER_COLOURS = ("tab:orange", "tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown",
                 "tab:pink", "tab:olive", "tab:cyan")


class Picture(Figure):
    """A matplotlib figure that a notebook displays as a PNG, with or without pyplot."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()


def column_colours(column: list[NamespaceId | None]) -> list[str]:
    """Colour each cell of one column by namespace identity, in order of first appearance.

    >>> u = [NamespaceId("uts", 10), NamespaceId("uts", 11), NamespaceId("uts", 10), None]
    >>> column_colours(u)
    ['#d9d9d9', 'tab:orange', '#d9d9d9', 'white']
    """
    seen: dict[NamespaceId, str] = {}
    colours = []
    for ns in column:
        if ns is None:
            colours.append("white")
            continue
        if ns not in seen:
            seen[ns] = FIRST_COLOUR if not seen else OTHER_COLOURS[(len(seen) - 1)
                                                                   % len(OTHER_COLOURS)]
        colours.append(seen[ns])
    return colours


def namespace_grid(processes: NamespaceTable | Iterable[int | str] | Mapping[int | str, str]
                   ) -> Picture:
    """Draw processes × namespace types, coloured by namespace identity, inode in each cell.

    Args:
        processes: a `probe.namespace_table(...)`, or what it takes: PIDs, or PIDs -> labels.
    """
    table = processes if isinstance(processes, NamespaceTable) else namespace_table(processes)
    rows, types = table.rows, table.types
    fig = Picture(figsize=(1.3 * len(types) + 2.5, 0.55 * len(rows) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    columns = [column_colours([r.namespaces.get(t) for r in rows]) for t in types]
    image = [[to_rgb(columns[j][i]) for j in range(len(types))] for i in range(len(rows))]
    ax.imshow(image, aspect="auto", interpolation="nearest")
    for i, row in enumerate(rows):
        for j, t in enumerate(types):
            ns = row.namespaces.get(t)
            ax.text(j, i, str(ns.inode) if ns else "-", ha="center", va="center", fontsize=7,
                    color="black" if columns[j][i] in (FIRST_COLOUR, "white") else "white")
    ax.set_xticks(range(len(types)), types)
    ax.set_yticks(range(len(rows)), [f"{r.pid} {r.command}" for r in rows])
    ax.set_xticks([x - 0.5 for x in range(1, len(types))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(rows))], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("namespace type (/proc/<pid>/ns/<type>)")
    ax.set_ylabel("process (PID, name)")
    fig.suptitle("Which processes share which namespace")
    fig.supxlabel("same colour in a column = same namespace; numbers are nsfs inode numbers",
                  fontsize=9)
    return fig


def timeline(times_s: Sequence[float], series: Mapping[str, Sequence[float]], *, ylabel: str,
             title: str) -> Picture:
    """Draw one line per series against time, such as zombies counted every 0.1 s (lesson 03).

    Args:
        times_s: the sample times, in seconds since the experiment started.
        series: a label for each line -> its values, one per sample time.
        ylabel: what the values count, with the unit.
    """
    fig = Picture(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for colour, (label, values) in zip(OTHER_COLOURS, series.items(), strict=False):
        ax.step(times_s, values, where="post", label=label, color=colour, linewidth=2)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel(ylabel)
    # start a little below 0: a line that stays at 0 (the init that reaps every zombie) would
    # otherwise lie on the x axis and vanish under it
    top = max((v for vs in series.values() for v in vs), default=1)
    ax.set_ylim(bottom=-0.05 * max(top, 1) - 0.25)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    ax.set_title(title)
    return fig


def copy_up_cost(measured: Mapping[str, Sequence[float]]) -> Picture:
    """Draw the first and the second write to a lower file against its size (lesson 06).

    Args:
        measured: what `layers.measure_copy_up` returns: `sizes_mib`, `first_ms`, `second_ms`.
    """
    fig = Picture(figsize=(7, 3.4), layout="constrained")
    ax = fig.add_subplot()
    sizes = measured["sizes_mib"]
    ax.plot(sizes, measured["first_ms"], "o-", color="tab:orange",
            label="first write: the file is copied up into upper")
    ax.plot(sizes, measured["second_ms"], "s-", color="tab:blue",
            label="second write: the file is in upper already")
    _costs_axes(ax, "size of the lower file (MiB)", "open + write 1 byte + close (ms)",
                "The cost of copy-up grows with the file, however small the write")
    return fig


def _costs_axes(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    """The axes of a cost plot: from zero, a light grid, the legend top left."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    ax.set_title(title)


def limit_label(file: str, value_bytes: float) -> str:
    """How a limit line is labelled: the file that set it, and its value.

    >>> limit_label("memory.max", 32 << 20), limit_label("pids.max", 20)
    ('memory.max = 32 MiB', 'pids.max = 20')
    """
    if file.startswith("memory."):
        return f"{file} = {value_bytes / (1 << 20):.4g} MiB"
    return f"{file} = {value_bytes:g}"


def cgroup_timeline(times_s: Sequence[float], series: Mapping[str, Sequence[float]], *,
                    limits: Mapping[str, float] | None = None,
                    events: Sequence[tuple[float, str]] = (), unit: str = "MiB",
                    scale: float = 1 << 20, ylabel: str = "memory", title: str = "",
                    xmax_s: float | None = None) -> Picture:
    """Draw sampled cgroup files over time, with a labelled line at each limit (lesson 14).

    Args:
        times_s: sample times, in seconds since the monitor started.
        series: a label (the file, `memory.current`) -> its values, in bytes (or counts).
        limits: a label from `limit_label()` -> the limit, in the same unit as the series;
            an unlimited one (`max`, infinity) is left out.
        events: (time, text) marks, such as (2.1, "OOM kill").
        unit, scale: the axis shows value / scale, in `unit` (MiB; "processes" with scale 1).
    """
    fig = Picture(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for colour, (label, values) in zip(OTHER_COLOURS[1:], series.items(), strict=False):
        ax.plot(times_s, [v / scale for v in values], color=colour, linewidth=2, label=label)
    styles = iter([("tab:red", "--"), ("tab:orange", ":"), ("tab:purple", "-.")] * 3)
    for label, value in (limits or {}).items():
        if value is None or value == float("inf"):
            continue
        colour, style = next(styles)
        ax.axhline(value / scale, color=colour, linestyle=style, linewidth=1.5, label=label)
        ax.annotate(label, (0, value / scale), xycoords=("axes fraction", "data"),
                    xytext=(4, 3), textcoords="offset points", color=colour, fontsize=8)
    for when, text in events:
        ax.axvline(when, color="black", linewidth=1, alpha=0.6)
        ax.annotate(text, (when, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", fontsize=8)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel(f"{ylabel} ({unit})")
    finite = [v / scale for vs in series.values() for v in vs if v == v and v != float("inf")]
    finite += [v / scale for v in (limits or {}).values() if v is not None and v != float("inf")]
    ax.set_ylim(0, 1.15 * max(finite, default=1) or 1)
    ax.set_xlim(left=0, right=xmax_s)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return fig


def cpu_heatmap(panels: Mapping[str, tuple[Sequence[float], Mapping[int, Sequence[float]]]], *,
                every_s: float, title: str = "") -> Picture:
    """Draw how busy each CPU was over time, one row per CPU, one panel per run (lesson 18).

    Args:
        panels: a label (the run: "cpuset.cpus = 1") -> (sample times in s, CPU -> its busy
            shares, 0 to 1, one per sample: `procfs.busy_shares` over the `every_s` before it).
    """
    fig = Picture(figsize=(7.5, 1.0 + 0.9 * sum(max(1, len(c)) for _, c in panels.values())),
                  layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    image = None
    for ax, (label, (times, shares)) in zip(axes, panels.items(), strict=True):
        cpus = sorted(shares)
        end = (times[-1] if times else 0) + every_s
        image = ax.imshow([[100 * v for v in shares[c]] for c in cpus], aspect="auto",
                          cmap="inferno", vmin=0, vmax=100, interpolation="nearest",
                          extent=(0, end, len(cpus) - 0.5, -0.5))
        ax.set_yticks(range(len(cpus)), [f"CPU {c}" for c in cpus])
        ax.set_title(label, fontsize=10, loc="left")
    axes[-1].set_xlabel("time since the container started (s)")
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="busy (%, /proc/stat)")
    if title:
        fig.suptitle(title)
    return fig


def stacked_usage(times_s: Sequence[float], rates: Mapping[str, Sequence[float]], *,
                  window_s: tuple[float, float] | None = None, title: str = "") -> Picture:
    """Stack the CPU each cgroup used, in CPUs (cpu.stat usage per second), over time
    (lesson 15): the band of each is its share of the CPU they compete for.

    Args:
        times_s: sample times; rates: a label -> CPUs used in the period before each sample.
        window_s: (start, end) of the seconds they competed, shaded.
    """
    fig = Picture(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    if times_s:
        ax.stackplot(times_s, *rates.values(), labels=list(rates), step="pre",
                     colors=OTHER_COLOURS[1:1 + len(rates)], alpha=0.8)
    if window_s is not None:
        ax.axvspan(*window_s, color=FIRST_COLOUR, alpha=0.4, zorder=0, label="competing")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("CPU used (CPUs)")
    ax.set_ylim(0, 1.3)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def latency_histogram(latencies_ms: Mapping[str, Sequence[float]], *, period_ms: float,
                      title: str = "") -> Picture:
    """One histogram of request latencies per way of running them (lesson 15), with the
    cpu.max period marked: what a quota adds to a request is up to a period of waiting."""
    fig = Picture(figsize=(7.5, 3.4), layout="constrained")
    ax = fig.add_subplot()
    top = max((v for vs in latencies_ms.values() for v in vs), default=1.0)
    bins = [top * 1.05 * i / 30 for i in range(31)]
    for colour, (label, values) in zip(OTHER_COLOURS[1:], latencies_ms.items(), strict=False):
        ax.hist(values, bins=bins, label=label, color=colour, alpha=0.7)
    ax.axvline(period_ms, color="tab:red", linestyle="--", linewidth=1.5,
               label=f"one cpu.max period ({period_ms:g} ms)")
    ax.set_xlabel("latency of a request (ms)")
    ax.set_ylabel("requests")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return fig


def filter_cost(measured: Mapping[str, Mapping[int, float]]) -> Picture:
    """Draw the time of one getpid(2) against how many filters are stacked (lesson 21).

    Args:
        measured: a label for each filter -> {filters stacked: ns per call}, as
            `workloads.getpid_cost` reads them.
    """
    fig = Picture(figsize=(7, 3.4), layout="constrained")
    ax = fig.add_subplot()
    for colour, (label, costs) in zip(OTHER_COLOURS, measured.items(), strict=False):
        stacked = sorted(costs)
        ax.plot(stacked, [costs[n] for n in stacked], "o-", color=colour, label=label)
    _costs_axes(ax, "filters stacked", "one getpid(2) (ns)",
                "What stacked filters add to each getpid(2)")
    return fig
