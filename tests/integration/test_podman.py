"""Real podman with `--runtime pycontain-oci`: run --rm with limits checked from inside, the
exit status through podman, run -d, ps, exec, logs, stop, rm; and the jail leaves nothing
(lesson 24). Skipped, with the reason, where podman is not installed (the v2 guest)."""

from __future__ import annotations

import os

import pytest

from pycontain import cgroups
from pycontain.oci import podman as podman_module
from pycontain.oci.podman import IMAGE, ULIMITS, Podman

if podman_module.available():
    pytest.skip(f"podman cannot run here: {podman_module.available()}", allow_module_level=True)


@pytest.fixture(scope="module")
def podman():
    with Podman() as jailed:
        jailed.import_rootfs()
        yield jailed


def test_run_rm_applies_memory_pids_cpus_and_cap_drop_inside(podman):
    v2 = cgroups.detect().mode == "v2"
    files = ("memory.max pids.max cpu.max" if v2 else
             "memory/memory.limit_in_bytes pids/pids.max cpu/cpu.cfs_quota_us")
    script = (f"cd /sys/fs/cgroup && cat {files} && grep CapEff /proc/self/status")
    done = podman.run("run", "--rm", *ULIMITS, "--memory", "32m", "--pids-limit", "20",
                      "--cpus", "0.5", "--cap-drop", "chown", IMAGE, "sh", "-c", script)
    lines = done.stdout.split("\n")
    assert lines[0] == str(32 << 20) and lines[1] == "20"
    assert lines[2].split()[0] == "50000"  # half a CPU: 50 ms of every 100 ms
    effective = int(lines[3].split()[1], 16)
    assert not effective & 1 << 0  # CAP_CHOWN dropped
    assert effective & 1 << 5  # CAP_KILL kept, as podman's default set has it


def test_t_gives_the_command_a_terminal_through_conmons_console_socket(podman):
    done = podman.run("run", "--rm", "-t", *ULIMITS, IMAGE, "sh", "-c",
                      "[ -t 0 ] && [ -t 1 ] && echo a terminal")
    assert done.stdout.split() == ["a", "terminal"], done.stderr
    cid = podman.run("run", "-d", *ULIMITS, IMAGE, "sleep", "60").stdout.strip()
    try:
        inside = podman.run("exec", "-t", cid, "sh", "-c", "[ -t 0 ] && echo exec terminal")
        assert inside.stdout.split() == ["exec", "terminal"], inside.stderr
    finally:
        podman.run("rm", "-f", cid)


def test_the_exit_status_comes_back_through_podman(podman):
    done = podman.run("run", "--rm", *ULIMITS, IMAGE, "sh", "-c", "exit 3", check=False)
    assert done.returncode == 3, done.stderr


def test_run_d_ps_exec_logs_stop_rm(podman):
    cid = podman.run("run", "-d", *ULIMITS, IMAGE, "sh", "-c",
                     "echo started; trap 'exit 0' TERM; while :; do sleep 0.1; done"
                     ).stdout.strip()
    listed = podman.run("ps", "--format", "{{.ID}} {{.Status}}").stdout
    assert f"{cid[:12]} Up" in listed
    inside = podman.run("exec", cid, "sh", "-c", "echo from exec; hostname")
    assert inside.stdout.split() == ["from", "exec", cid[:12]]
    assert podman.run("logs", cid).stdout == "started\n"
    podman.run("stop", "-t", "10", cid)  # SIGTERM: the trap ends it with 0
    status = podman.run("ps", "-a", "--format", "{{.ID}} {{.Status}}").stdout
    assert f"{cid[:12]} Exited (0)" in status
    podman.run("rm", cid)
    assert cid[:12] not in podman.run("ps", "-a").stdout


def test_the_jail_leaves_no_process_cgroup_or_file():
    def conmons() -> set[str]:  # conmon's sockets go to TMPDIR, the jail's own
        return {n for n in os.listdir("/tmp") if n.startswith("conmon")}

    before = conmons()
    jailed = Podman()
    try:
        jailed.import_rootfs()
        cid = jailed.run("run", "-d", *ULIMITS, IMAGE, "sleep", "60").stdout.strip()
        jailed.run("exec", cid, "true")  # conmon's exec: its sockets too
        running = jailed.pids()
        assert len(running) >= 3  # the holder, conmon, the container
        made, where = list(jailed.cgroups), jailed.dir
    finally:
        jailed.close()
    assert not any(os.path.exists(path) for path in made)
    assert not os.path.exists(where)
    assert not any(os.path.exists(f"/proc/{pid}") and _in(made, pid) for pid in running)
    assert conmons() <= before


def _in(cgroup_dirs: list[str], pid: int) -> bool:
    """Whether `pid` still runs in one of the jail's cgroups (a zombie has ended: podman's
    conmon, reparented to PID 1, waits there to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cgroup") as f:
            return any(os.path.basename(d) in f.read() for d in cgroup_dirs)
    except FileNotFoundError:
        return False
