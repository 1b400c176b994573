"""`lab.sweep()` on the real kernel: one leftover of several kinds, made here and named here, is
found by `lab.leftovers()` and removed, in the registry's order, and nothing else is touched.

The sweep is confined to these names: other tests and engineers run on this machine at the same
time, and a machine-wide sweep would take their cgroups, namespaces and directories.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile

from pycontain import cgroups, lab, syscalls
from pycontain.namespaces import ipc


def _veth(name: str) -> None:
    """A veth pair in the host's network namespace: `name`, and a peer without the prefix (it
    goes with `name`, so that the sweep sees one link)."""
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name",
                    f"pct-{name[-5:]}"], check=True, capture_output=True)


def test_sweep_removes_exactly_the_leftovers_made_here(monkeypatch):
    token = secrets.token_hex(3)
    netns, link = f"pycontain-test-{token}", f"pycontain-{token[:5]}"
    layout = cgroups.detect()
    hierarchy = layout.unified or layout.hierarchy("pids")
    assert hierarchy is not None
    cgroup = os.path.join(cgroups.home(hierarchy), f"pycontain-test-{token}")
    directory = tempfile.mkdtemp(prefix=f"pycontain-test-{token}-")
    decoy = tempfile.mkdtemp(prefix=f"pycontain-test-{token}-decoy-")  # not in the sweep
    sleeper = subprocess.Popen(["sleep", "300"])
    shmid = ipc.create_segment(ipc.new_key())
    try:
        os.mkdir(f"{directory}/m")
        subprocess.run(["mount", "-t", "tmpfs", "pycontain-test", f"{directory}/m"], check=True)
        subprocess.run(["ip", "netns", "add", netns], check=True)
        _veth(link)
        os.mkdir(cgroup)
        with open(f"{cgroup}/cgroup.procs", "w") as f:  # a process to kill before rmdir
            f.write(str(sleeper.pid))
        made = [f"mount {directory}/m", f"mount /run/netns/{netns}", f"dir {directory}",
                f"netns /run/netns/{netns}", f"link {link}", f"cgroup {cgroup}", f"shm {shmid}"]
        everything = lab.leftovers
        assert set(made) <= set(everything()), everything()
        monkeypatch.setattr(lab, "leftovers", lambda: [i for i in everything() if i in made])

        listed = lab.leftovers()
        order = [kind.name for kind in lab.kinds()]
        assert sorted(listed) == sorted(made)
        assert [order.index(i.split()[0]) for i in listed] == sorted(order.index(i.split()[0])
                                                                     for i in listed)
        assert lab.sweep() == [f"removed {item}" for item in listed]  # in the registry's order

        assert not set(made) & set(everything())
        assert sleeper.wait(timeout=10) == -9  # killed, then the cgroup was removed
        assert not os.path.exists(directory) and not os.path.exists(cgroup)
        assert netns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                           text=True).stdout
        assert not os.path.exists(f"/sys/class/net/{link}")
        assert shmid not in {s.shmid for s in ipc.segments()}
        assert os.path.isdir(decoy) and f"dir {decoy}" in everything()  # not ours to sweep
    finally:  # whatever a failure left, by name
        sleeper.kill()
        sleeper.wait()
        if os.path.ismount(f"{directory}/m"):
            syscalls.umount2(f"{directory}/m", syscalls.UmountFlag.MNT_DETACH)
        for path in (directory, decoy):
            subprocess.run(["rm", "-rf", path], check=False)
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)
        if os.path.exists(f"/sys/class/net/{link}"):
            subprocess.run(["ip", "link", "delete", link], check=False)
        if os.path.isdir(cgroup):
            cgroups.events.wait_until_empty(cgroup, timeout_s=10)
            os.rmdir(cgroup)
        if shmid in {s.shmid for s in ipc.segments()}:
            ipc.remove_segment(shmid)


def test_a_leftover_that_cannot_be_removed_is_reported_and_the_rest_goes_on(monkeypatch):
    directory = tempfile.mkdtemp(prefix="pycontain-test-")
    made = [f"netns /run/netns/pycontain-test-absent-{secrets.token_hex(3)}", f"dir {directory}"]
    monkeypatch.setattr(lab, "leftovers", lambda: made)
    first, second = lab.sweep()
    assert first.startswith(f"could not remove {made[0]}: ") and first.endswith(", ignoring")
    assert second == f"removed dir {directory}" and not os.path.exists(directory)

