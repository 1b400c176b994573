"""plot: the namespace grid is coloured by namespace identity and displays as a PNG."""

from __future__ import annotations

import os

from matplotlib.colors import to_rgb

from pycontain.observe import plot
from pycontain.observe.probe import NamespaceTable, ProcessNamespaces
from pycontain.procfs import NamespaceId


def table() -> NamespaceTable:
    def row(pid, name, uts, net):
        return ProcessNamespaces(pid, name, {"uts": NamespaceId("uts", uts),
                                             "net": NamespaceId("net", net)})

    return NamespaceTable((row(1, "host", 10, 20), row(2, "box", 11, 20), row(3, "box2", 12, 20)),
                          ("uts", "net"))


def test_column_colours_follow_identity_not_position():
    a, b = NamespaceId("uts", 1), NamespaceId("uts", 2)
    assert plot.column_colours([b, a, b, None]) == [plot.FIRST_COLOUR, "tab:orange",
                                                     plot.FIRST_COLOUR, "white"]


def test_grid_has_one_cell_per_process_and_type_coloured_by_namespace():
    fig = plot.namespace_grid(table())
    (ax,) = fig.axes
    image = ax.get_images()[0].get_array()
    assert image.shape[:2] == (3, 2)
    uts, net = image[:, 0, :3], image[:, 1, :3]
    assert len({tuple(c) for c in uts.tolist()}) == 3  # three UTS namespaces, three colours
    assert len({tuple(c) for c in net.tolist()}) == 1  # one network namespace, one colour
    assert tuple(net[0]) == to_rgb(plot.FIRST_COLOUR)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1 host", "2 box", "3 box2"]
    assert "namespace type" in ax.get_xlabel() and "process" in ax.get_ylabel()


def test_grid_shows_as_png_without_pyplot():
    png = plot.namespace_grid({os.getpid(): "me"})._repr_png_()
    assert png.startswith(b"\x89PNG")


def test_cgroup_timeline_labels_each_limit_with_its_file_and_has_units():
    mib = 1 << 20
    fig = plot.cgroup_timeline([0, 1, 2], {"memory.current": [0, 16 * mib, 30 * mib]},
                               limits={plot.limit_label("memory.max", 32 * mib): 32 * mib,
                                       "memory.high = max": float("inf")},
                               events=[(1.5, "OOM kill")])
    (ax,) = fig.axes
    assert ax.get_xlabel() == "time since start (s)" and ax.get_ylabel() == "memory (MiB)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["memory.current", "memory.max = 32 MiB"]  # an unlimited line is left out
    assert [line.get_ydata()[0] for line in ax.get_lines()][1] == 32
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_timeline_draws_a_line_at_zero_above_the_x_axis():
    # lesson 03: the init that reaps every orphan counts 0 zombies all along; its line must not
    # lie on the x axis, hidden by it
    fig = plot.timeline([0, 0.1, 0.2], {"PID 1 = sleep": [0, 1, 2], "PID 1 = pycontain init":
                                        [0, 0, 0]}, ylabel="zombies", title="t")
    (ax,) = fig.axes
    bottom, top = ax.get_ylim()
    assert bottom < 0 < 2 <= top
    gap = (0 - bottom) / (top - bottom)  # share of the plot's height between axis and line
    assert gap >= 0.03
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["PID 1 = sleep", "PID 1 = pycontain init"]


def test_filter_cost_draws_one_line_per_filter_from_zero():
    fig = plot.filter_cost({"a": {0: 100.0, 1: 110.0, 10: 120.0}, "b": {0: 100.0, 10: 600.0}})
    (ax,) = fig.axes
    assert [list(line.get_xdata()) for line in ax.get_lines()] == [[0, 1, 10], [0, 10]]
    assert ax.get_ylim()[0] == 0 and fig._repr_png_().startswith(b"\x89PNG")
