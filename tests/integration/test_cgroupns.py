"""Lesson 10's claims on the real kernel: in a cgroup namespace the container's cgroup is `/`,
and a cgroupfs it mounts shows only its own subtree."""

from __future__ import annotations

import pycontain
from pycontain import procfs
from pycontain.namespaces import cgroup
from pycontain.observe import widgets


def test_with_limits_every_hierarchy_shows_the_container_at_the_root():
    view = widgets.look_inside(pids_max=20)
    assert view.cgroups and set(view.cgroups.values()) == {"/"}, view.cgroups
    assert view.children == []  # the mount shows the container's cgroup, with no sibling
    assert view.procs and set(view.procs) <= {1, 2, 3, 4, 5}  # only its own processes


def test_without_the_namespace_the_host_path_shows():
    view = widgets.look_inside(pids_max=20, namespaces={"mnt", "pid"})
    [name] = {p.rsplit("/", 1)[-1] for c, p in view.cgroups.items() if c in ("pids", "")}
    assert name.startswith("pycontain-ctr-")
    assert view.shows_own  # the mount shows the host's tree, the container's cgroup in it


def test_without_limits_the_callers_cgroup_is_the_root():
    result = pycontain.run(["cat", "/proc/self/cgroup"], namespaces={"cgroup"}, timeout_s=60)
    assert set(cgroup.parse(result.stdout).values()) == {"/"}
    assert set(cgroup.parse(result.stdout)) == set(cgroup.own())


def test_the_container_is_in_a_new_cgroup_namespace():
    with pycontain.spawn(["sleep", "30"], namespaces={"cgroup"}, pids_max=20) as container:
        assert container.namespaces()["cgroup"] != procfs.namespace("self", "cgroup")
        # seen from the host, the same process is in the container's cgroup
        assert container.cgroup is not None
        assert any(p.endswith(container.cgroup.name) for p in cgroup.own(container.pid).values())


def test_default_containers_have_no_cgroup_namespace():
    with pycontain.spawn(["sleep", "30"]) as container:
        assert container.namespaces()["cgroup"] == procfs.namespace("self", "cgroup")
