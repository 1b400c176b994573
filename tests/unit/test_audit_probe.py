"""The audit's reading of the probe's output, without a container."""

from __future__ import annotations

import pytest

from pycontain import procfs
from pycontain.audit import probe
from pycontain.audit.outcome import DEFAULTS

HOST = {t: procfs.NamespaceId(t, 100 + i) for i, t in enumerate(procfs.NAMESPACE_TYPES)}
ROOT = "1 0 8:1 / / rw - ext4 /dev/sda rw"


def output(ns: dict[str, int], status: str = "CapBnd:\t0\nCapEff:\t0\nNoNewPrivs:\t1\n"
           "Seccomp:\t2", mountinfo: str = "20 1 0:5 / / rw - overlay overlay rw",
           uid_map: str = "0 100000 65536") -> str:
    lines = "\n".join(f"{t} {t}:[{n}]" for t, n in ns.items())
    return (f"@@ ns\n{lines}\n@@ status\n{status}\n@@ uid_map\n{uid_map}\n"
            f"@@ mountinfo\n{mountinfo}\n"
            "@@ writable\n/proc/sys/kernel/core_pattern no\n@@ dev\n"
            "crw-rw-rw- 1 root root 1, 3 Dec 4 17:25 null\n@@ mknod\nrefused\n@@ fds\n0\n1\n2\n"
            "@@ cwd\n/\nreachable\n@@ net\n lo: 0 0\n@@ route\nIface\n@@ ipc\nshm 0\n"
            "@@ cgroup\npids.max 20\nmemory.max 67108864\n@@ end\n")


def test_a_namespace_of_the_hosts_is_red_another_green():
    ns = {t: 100 + i for i, t in enumerate(procfs.NAMESPACE_TYPES)} | {"net": 999}
    lines = probe.findings(output(ns), HOST, [procfs.Mount.parse(ROOT)])
    by = {f.name: f for f in lines}
    assert by["ns net"].ok and by["ns pid"].ok is False and by["ns time"].ok is None
    assert by["network"].ok and by["ipc"].ok is False
    assert [f.name for f in lines] == list(probe.LINES)


@pytest.mark.parametrize("uid_map, ok", [("         0     100000      65536", True),
                                         ("0 0 1", False), ("0 0 65536", False),
                                         ("1000 1000 1", True)])  # root unmapped: nobody
def test_a_user_namespace_that_maps_root_to_the_hosts_root_is_red(uid_map, ok):
    ns = {t: 200 + i for i, t in enumerate(procfs.NAMESPACE_TYPES)}
    by = {f.name: f for f in probe.findings(output(ns, uid_map=uid_map), HOST,
                                            [procfs.Mount.parse(ROOT)])}
    assert by["ns user"].ok is ok, by["ns user"]
    if not ok:
        assert "root inside is the host's root" in by["ns user"].evidence


def test_sys_admin_in_the_bounding_set_is_red():
    ns = {t: 1 for t in procfs.NAMESPACE_TYPES}
    status = f"CapBnd:\t{1 << 21:x}\nCapEff:\t0\nNoNewPrivs:\t0\nSeccomp:\t0"
    by = {f.name: f for f in probe.findings(output(ns, status), HOST, [procfs.Mount.parse(ROOT)])}
    assert "CAP_SYS_ADMIN" in by["capabilities"].evidence and by["capabilities"].ok is False
    assert by["seccomp"].ok is False and by["no_new_privs"].ok is False


def test_the_hosts_root_is_red():
    ns = {t: 1 for t in procfs.NAMESPACE_TYPES}
    by = {f.name: f for f in probe.findings(output(ns, mountinfo=ROOT), HOST,
                                            [procfs.Mount.parse(ROOT)])}
    assert by["mounts"].ok is False and "the host's" in by["mounts"].evidence


def test_an_unfinished_probe_is_refused():
    with pytest.raises(ValueError, match="before its end"):
        probe.parse("@@ ns\nnet net:[1]\n")


def test_the_attacks_defaults_are_pycontain_runs():
    from pycontain.cli import _security_options

    assert _security_options(False, None, None, None, True) == DEFAULTS
