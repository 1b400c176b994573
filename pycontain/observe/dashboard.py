"""A live dashboard of detached containers: CPU, memory and processes over time (lesson 22).

`pycontain stats` prints one table a second; a `Dashboard` keeps the same usages
(`observe.stats.Sampler`) for several containers over time and draws them as three panels
sharing one time axis: CPU % (100 % is one core), memory against each container's memory.max,
and pids.current. What the kernel did to a container (an OOM kill; `stats.changes`) is a
vertical mark at the moment the counter rose. `watch()` redraws it live in JupyterLab
(ipywidgets); without a front end, or without ipywidgets, it runs the same and returns the
dashboard, which a notebook shows as a PNG and a terminal as its last table.

See also: docker-stats(1); lesson 14's monitor for one cgroup at a fast rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from pycontain.observe import plot, stats

#: the panels: (Usage field, axis label, scale)
PANELS = (("cpu_percent", "CPU (% of one core)", 1.0),
          ("memory_bytes", "memory (MiB)", float(1 << 20)),
          ("pids", "processes (pids.current)", 1.0))


class Dashboard:
    """Usage of the containers `references` names, sampled `hz` times a second."""

    def __init__(self, references: Sequence[str], hz: float = 4.0) -> None:
        if not 0 < hz <= 20:
            raise ValueError(f"`hz` must be in (0, 20], got {hz!r}")
        self.references, self.period_s = tuple(references), 1.0 / hz
        self.times_s: list[float] = []
        self.series: dict[str, dict[str, list[float]]] = {}
        self.limits: dict[str, float] = {}
        self.marks: list[tuple[float, str]] = []
        self.last: list[stats.Usage] = []
        self.host_bytes = stats.host_memory_bytes()

    def run(self, seconds: float, on_sample: Callable[[Dashboard], None] | None = None,
            until: Callable[[Dashboard], bool] | None = None) -> Dashboard:
        """Sample for `seconds`, or until `until(self)` says enough was seen, calling
        `on_sample(self)` after each sample; return self."""
        with stats.Sampler(self.references) as sampler:
            sampler.read()
            started = due = time.monotonic()
            while time.monotonic() - started < seconds:
                due += self.period_s
                time.sleep(max(0.0, due - time.monotonic()))
                self._add(time.monotonic() - started, sampler.next())
                if on_sample is not None:
                    on_sample(self)
                if until is not None and until(self):
                    break
        return self

    def _add(self, when_s: float, usages: list[stats.Usage]) -> None:
        self.times_s.append(when_s)
        for u in usages:
            name = u.name or u.id[:12]
            columns = self.series.setdefault(
                name, {field: [math.nan] * (len(self.times_s) - 1) for field, _, _ in PANELS})
            for field, _, _ in PANELS:
                value = getattr(u, field)
                columns[field].append(math.nan if value is None else value)
            # a limit of its own, not the machine's memory that stats shows for "max"
            if u.memory_limit_bytes is not None and u.memory_limit_bytes < self.host_bytes:
                self.limits[name] = u.memory_limit_bytes
        for columns in self.series.values():  # a container that ended: a gap from now on
            for values in columns.values():
                values.extend([math.nan] * (len(self.times_s) - len(values)))
        for line in stats.changes(self.last, usages):
            if "OOM" in line:
                self.marks.append((when_s, line.split(":")[0] + ": OOM kill"))
        self.last = usages

    def oom_kills(self) -> dict[str, int]:
        """Each container's OOM kills in all, as last read."""
        return {u.name or u.id[:12]: int(u.oom_kills or 0) for u in self.last}

    def figure(self) -> plot.Picture:
        fig = plot.Picture(figsize=(8, 6.4), layout="constrained")
        axes = fig.subplots(len(PANELS), 1, sharex=True)
        colours = dict(zip(self.series, plot.OTHER_COLOURS, strict=False))
        for ax, (field, label, scale) in zip(axes, PANELS, strict=True):
            for name, columns in self.series.items():
                ax.plot(self.times_s, [v / scale for v in columns[field]], label=name,
                        color=colours[name], linewidth=2)
                limit = self.limits.get(name)
                if field == "memory_bytes" and limit is not None:
                    ax.axhline(limit / scale, color=colours[name], linestyle="--",
                               linewidth=1, alpha=0.7)
            for when, text in self.marks:
                ax.axvline(when, color="tab:red", linewidth=1.2)
                if field == "memory_bytes":
                    ax.annotate(text, (when, 1), xycoords=("data", "axes fraction"),
                                xytext=(3, -12), textcoords="offset points", fontsize=8,
                                color="tab:red")
            ax.set_ylabel(label, fontsize=9)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
        axes[0].legend(loc="upper right", fontsize=8)
        axes[0].set_title("detached containers under load (dashed: memory.max)")
        axes[-1].set_xlabel("time since the dashboard started (s)")
        return fig

    def _repr_png_(self) -> bytes:
        return self.figure()._repr_png_()

    def __repr__(self) -> str:
        return stats.table(self.last)


def watch(board: Dashboard, seconds: float,
          until: Callable[[Dashboard], bool] | None = None) -> Any:
    """Run `board` for `seconds` (or until `until(board)`), redrawn live in JupyterLab (a button
    watches again, on a fresh dashboard of the same containers); headless, or without
    ipywidgets, `board` itself."""
    try:
        import ipywidgets  # noqa: F401  (only whether it is there)
    except ImportError:  # the plain function
        return board.run(seconds, until=until)
    from pycontain.observe import widgets

    every = max(1, round(1 / board.period_s))  # redraw once a second: a PNG costs more
    boards = iter([board])

    def run(draw: Callable[[Any], None]) -> tuple[Any, str]:
        def on_sample(partial: Dashboard) -> None:
            if len(partial.times_s) % every == 0:
                draw(partial)

        fresh = next(boards, None) or Dashboard(board.references, 1 / board.period_s)
        done = fresh.run(seconds, on_sample, until)
        kills = ", ".join(f"{name} {count}" for name, count in done.oom_kills().items())
        return done, f"{len(done.times_s)} samples in {seconds:g} s; OOM kills in all: {kills}"

    return widgets.live_playground([], "watch again", run)
