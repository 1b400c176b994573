"""Detached containers on the real kernel: `run -d` and its supervisor, `ps`, `logs`, `stop`,
`kill`, `rm`, `inspect`, `pause` / `unpause`, and what a killed supervisor leaves
(pycontain.state, pycontain.supervisor).

Every test keeps its containers in a run directory of its own ($PYCONTAIN_RUN_DIR), so that
another engineer's containers on this machine are neither listed nor removed, and checks at
the end that it is empty. Waits are on events (a state change, a file, a pid gone).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from pycontain import faults, lab, settings, state
from pycontain.network import bridge, nft

from .conftest import PYCONTAIN, run_cli

DEADLINE_S = 15.0


def until(condition, timeout_s=DEADLINE_S):
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return found


@pytest.fixture(autouse=True)
def run_dir(monkeypatch):
    """A run directory for this test's containers only; every container in it is removed at
    the end (what a failure left too), and the test fails if one was left."""
    root = tempfile.mkdtemp(prefix="pycontain-run-")
    monkeypatch.setenv(settings.RUN_DIR_VARIABLE, root)
    yield root
    left = state.leftover_containers()
    for path in left:
        state.remove_container(path)
    os.rmdir(os.path.join(root, state.NAMES)) if os.path.isdir(f"{root}/names") else None
    os.rmdir(root)
    assert not left, f"the test left these containers: {left}"


def detach(*args: str) -> str:
    done = run_cli("run", "-d", *args)
    assert done.returncode == 0, done.stderr
    container_id = done.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", container_id), done.stdout
    return container_id


def inspect(reference: str) -> dict:
    done = run_cli("inspect", reference)
    assert done.returncode == 0, done.stderr
    [record] = json.loads(done.stdout)
    return record


def exited(reference: str) -> dict | None:
    record = inspect(reference)
    return record if record["status"] == "exited" else None


def ps_line(container_id: str, *flags: str) -> str | None:
    done = run_cli("ps", *flags)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CONTAINER ID   IMAGE   "), done.stdout
    return next((line for line in done.stdout.splitlines() if line.startswith(container_id[:12])),
                None)


def ancestors(pid: int) -> list[int]:
    """`pid`'s parent, its parent's parent, ... up to PID 1."""
    found = []
    while pid > 1:
        with open(f"/proc/{pid}/stat") as f:
            pid = int(f.read().rpartition(")")[2].split()[1])
        found.append(pid)
    return found


def refused(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 125, (done.returncode, done.stdout, done.stderr)
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr


# --- run -d, ps, logs, inspect, stop, rm ------------------------------------------------------

def test_a_detached_container_runs_on_after_the_command_and_is_found_by_name():
    container_id = detach("--name", "web", "--", "sh", "-c",
                          "echo out; echo err >&2; exec sleep 60")
    record = inspect("web")
    assert record["id"] == container_id and record["status"] == "running"
    # its first process runs, started when the state says, below its supervisor, whose parent
    # is not the command any more (it has gone)
    assert state.alive(record["container"]) and state.alive(record["supervisor"])
    assert record["supervisor"]["pid"] in ancestors(record["pid"])
    assert ancestors(record["supervisor"]["pid"])[0] != os.getpid()
    assert record["cgroup"] is not None  # always one, for pause and for rm
    line = ps_line(container_id)
    assert line is not None and re.search(r'"sh -c echo out; ech…"\s+.* ago\s+Up ', line), line
    assert line.endswith("web")
    assert run_cli("ps", "-q").stdout.split() == [container_id[:12]]

    until(lambda: "out" in run_cli("logs", "web").stdout)
    logs = run_cli("logs", container_id[:5])  # a unique prefix
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    assert run_cli("logs", "--tail", "0", "web").stdout == ""

    # sleep as PID 1 has no handler for SIGTERM: the kernel ignores it, stop SIGKILLs it
    done = run_cli("stop", "-t", "0", "web")
    assert (done.returncode, done.stdout) == (0, "web\n"), done.stderr
    record = inspect("web")  # stop returns once the supervisor has recorded the end
    assert record["status"] == "exited" and record["exit_code"] == 137
    assert record["reason"] == "killed by signal 9 (SIGKILL)"
    assert not any(os.path.isdir(d) for d in record["cgroup"]["dirs"].values())  # released
    assert ps_line(container_id) is None
    assert re.search(r"Exited \(137\) .* ago", ps_line(container_id, "-a") or "")

    assert run_cli("rm", "web").returncode == 0
    assert not os.path.exists(state.directory(container_id))
    refused(run_cli("logs", "web"), "CONTAINER must be the id, an id prefix or the name of")
    again = detach("--name", "web", "--rm", "--", "true")  # the name is free again
    until(lambda: not os.path.exists(state.directory(again)))


def test_stop_sends_sigterm_first_and_a_container_that_handles_it_exits_its_way():
    detach("--name", "polite", "--", "sh", "-c",
           "trap 'echo bye; exit 3' TERM; echo ready; while :; do sleep 0.05; done")
    until(lambda: "ready" in run_cli("logs", "polite").stdout)
    assert run_cli("stop", "polite").returncode == 0  # -t 10: it ends long before
    record = inspect("polite")
    assert (record["exit_code"], record["reason"]) == (3, "exited 3")
    assert run_cli("logs", "polite").stdout == "ready\nbye\n"
    assert run_cli("stop", "polite").returncode == 0  # stopping an ended one: nothing to do
    assert run_cli("rm", "polite").returncode == 0


def test_kill_sends_the_signal_asked_for():
    detach("--name", "target", "--", "sh", "-c",
           "trap 'exit 7' USR1; echo ready; while :; do sleep 0.05; done")
    until(lambda: "ready" in run_cli("logs", "target").stdout)
    assert run_cli("kill", "-s", "usr1", "target").returncode == 0
    assert until(lambda: exited("target"))["exit_code"] == 7
    refused(run_cli("kill", "target"), "CONTAINER must be a running container, got 'target'")
    assert run_cli("rm", "target").returncode == 0


def test_pause_freezes_every_process_and_unpause_thaws_them():
    detach("--name", "frozen", "--", "sleep", "60")
    assert run_cli("pause", "frozen").returncode == 0
    record = inspect("frozen")
    cgroup = state.cgroup_of(record)
    assert record["status"] == "paused" and cgroup is not None and cgroup.frozen()
    assert "(Paused)" in (ps_line(record["id"]) or "")
    refused(run_cli("pause", "frozen"), "CONTAINER must be a container that is not paused")
    assert run_cli("unpause", "frozen").returncode == 0
    assert inspect("frozen")["status"] == "running" and not cgroup.frozen()
    refused(run_cli("unpause", "frozen"), "CONTAINER must be a paused container")
    assert run_cli("rm", "-f", "frozen").returncode == 0


def test_rm_refuses_a_running_container_without_f_and_kills_it_with_f():
    container_id = detach("--name", "busy", "--memory", "32M", "--", "sleep", "60")
    record = inspect("busy")
    refused(run_cli("rm", "busy"), "CONTAINER must be a container that is not running (or -f")
    assert state.alive(record["container"]) and inspect("busy")["status"] == "running"
    assert run_cli("rm", "-f", "busy").returncode == 0
    assert not state.alive(record["container"]) and not state.alive(record["supervisor"])
    assert not os.path.exists(state.directory(container_id))
    assert not any(os.path.isdir(d) for d in record["cgroup"]["dirs"].values())


def test_logs_follow_prints_what_comes_until_the_container_ends(tmp_path):
    go = tmp_path / "go"
    detach("--name", "talker", "--", "sh", "-c",
           f"echo one; while [ ! -e {go} ]; do sleep 0.02; done; echo two")
    follow = subprocess.Popen([*PYCONTAIN, "logs", "-f", "talker"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert follow.stdout is not None and follow.stdout.readline() == "one\n"
        go.touch()
        assert follow.stdout.read() == "two\n"  # EOF: it ended with the container
        assert follow.wait(timeout=DEADLINE_S) == 0
    finally:
        follow.kill()
        follow.wait()
    assert run_cli("rm", "talker").returncode == 0


def test_rm_with_the_run_removes_everything_when_it_ends(run_dir):
    container_id = detach("--rm", "--memory", "32M", "--", "true")
    until(lambda: not os.path.exists(state.directory(container_id)))
    assert state.leftover_containers() == []


def test_a_command_that_is_not_found_fails_run_with_nothing_made():
    done = run_cli("run", "-d", "--name", "typo", "--", "/no/such/program")
    assert done.returncode == 127 and "Traceback" not in done.stderr, done.stderr
    assert "/no/such/program" in done.stderr and state.ids() == []
    assert not os.path.exists(os.path.join(state.root(), "names", "typo"))


def test_create_makes_the_state_and_start_starts_it_once():
    container_id = run_cli("create", "--name", "later", "--", "sh", "-c",
                           "echo started; exec sleep 60").stdout.strip()
    record = inspect("later")
    assert (record["id"], record["status"], record["pid"]) == (container_id, "created", None)
    assert record["supervisor"] is None and record.get("cgroup") is None  # nothing runs yet
    assert ps_line(container_id) is None and "Created" in (ps_line(container_id, "-a") or "")
    done = run_cli("start", "later")
    assert (done.returncode, done.stdout) == (0, "later\n"), done.stderr
    record = inspect("later")
    assert record["status"] == "running" and state.alive(record["container"])
    until(lambda: run_cli("logs", "later").stdout == "started\n")
    refused(run_cli("start", "later"), "CONTAINER must be a container that `pycontain create` "
                                       "made and nothing started yet")
    assert run_cli("rm", "-f", "later").returncode == 0


# --- bad input: refused, nothing made ---------------------------------------------------------

def test_bad_input_is_refused_with_the_flag_named_and_nothing_made(run_dir):
    first = detach("--name", "taken", "--", "sleep", "60")
    refused(run_cli("run", "-d", "--name", "taken", "--", "true"),
            f"--name must be a name no other container has, got 'taken'\n  hint: container "
            f"{first[:12]} is called 'taken'")
    refused(run_cli("run", "--name", "fg", "--", "true"), "--name must be used only with -d")
    refused(run_cli("run", "-d", "--name", "a b", "--", "true"), "--name must be two or more")
    # nothing made: the name is taken (or refused) before the run directory, the supervisor,
    # its cgroup, ... (the cgroups cannot be compared here: other tests on this machine make
    # theirs meanwhile)
    assert state.ids() == [first] and os.listdir(f"{run_dir}/names") == ["taken"]
    refused(run_cli("rm", "nosuch"), "CONTAINER must be the id, an id prefix or the name of a "
                                     "container `pycontain ps -a` lists, got 'nosuch'")
    refused(run_cli("logs", "--tail", "x", "taken"), "--tail must be a number of lines, or all")
    refused(run_cli("stop", "-t", "soon", "taken"), "-t must be a whole number of seconds")
    refused(run_cli("kill", "-s", "SIGNOPE", "taken"), "-s must be a signal name or number")
    for verb in ("ps", "logs", "stop", "kill", "rm", "inspect", "pause", "unpause"):
        shown = run_cli(verb, "--help")
        assert shown.returncode == 0 and shown.stdout.startswith(f"usage: pycontain {verb}")
    assert inspect("taken")["status"] == "running"
    assert run_cli("rm", "-f", "taken").returncode == 0


def test_a_detached_container_needs_root(has_setpriv):
    if not has_setpriv:
        pytest.skip("needs setpriv to run the command as another user")
    done = run_cli("run", "-d", "--user-namespace", "--", "true", user=65534)
    refused(done, "a detached container needs root")
    assert state.ids() == []


def test_an_ambiguous_prefix_is_refused(run_dir):
    gone = {"pid": 1, "start_time": -1, "boot_id": state.boot_id()}
    for digit in "12":  # two ended containers whose ids start alike
        state.create(f"f0{digit}" + "0" * 61, None)
        state.update(f"f0{digit}" + "0" * 61, status="exited", exit_code=0, supervisor=gone)
    done = run_cli("rm", "f0")
    refused(done, "CONTAINER must be a prefix that only one container's id starts with, got "
                  "'f0'\n  hint: 2 containers' ids start with it (f01000000000, f02000000000)")
    assert len(state.ids()) == 2
    assert run_cli("rm", "f01", "f02").returncode == 0 and state.ids() == []


# --- races and crashes ------------------------------------------------------------------------

def test_twenty_concurrent_runs_get_distinct_ids_an_intact_state_and_one_the_name():
    def twenty(*args: str) -> list[subprocess.CompletedProcess[str]]:
        started = [subprocess.Popen([*PYCONTAIN, "run", "-d", *args, "--", "true"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for _ in range(20)]
        return [subprocess.CompletedProcess(p.args, p.wait(timeout=60), *p.communicate())
                for p in started]

    ran = twenty()
    assert all(done.returncode == 0 for done in ran), [d.stderr for d in ran]
    ids = {done.stdout.strip() for done in ran}
    assert len(ids) == 20 and set(state.ids()) == ids
    for container_id in ids:
        record = until(lambda container_id=container_id: exited(container_id))
        assert (record["id"], record["exit_code"]) == (container_id, 0)

    named = twenty("--name", "race")
    won = [done for done in named if done.returncode == 0]
    assert len(won) == 1, [d.stderr for d in named]
    assert all("--name must be a name no other container has, got 'race'" in done.stderr
               for done in named if done.returncode != 0)
    assert inspect("race")["id"] == won[0].stdout.strip() and len(state.ids()) == 21
    assert run_cli("rm", "-f", "race", *ids).returncode == 0
    assert state.ids() == []


def test_a_killed_supervisor_leaves_an_exited_container_and_nothing_cleanup_cannot_remove(
        embedded_rootfs):
    container_id = detach("--name", "crash", "--rootfs", embedded_rootfs, "--memory", "32M",
                          "--network", "bridge", "--", "sleep", "60")
    record = inspect("crash")
    assert re.search(rf"{re.escape(embedded_rootfs)}\s+\"sleep 60\"", ps_line(container_id) or "")
    veth, layer = record["network"]["veth"], record["layer"]["path"]
    assert os.path.exists(f"/sys/class/net/{veth}") and os.path.isdir(layer)

    os.kill(record["supervisor"]["pid"], signal.SIGKILL)
    until(lambda: not state.alive(record["container"]))  # PDEATHSIG: it dies with its supervisor
    now = inspect("crash")
    assert now["status"] == "exited" and "its supervisor (pid" in now["reason"]
    assert "Exited (?): its supervisor was killed" in (ps_line(container_id, "-a") or "")
    assert ps_line(container_id) is None  # never shown as running
    left = lab.leftovers()
    assert f"container {state.directory(container_id)}" in left
    assert any(item.endswith(record["cgroup"]["name"]) for item in left)

    [kind] = [k for k in lab.kinds() if k.name == "container"]  # what `pycontain cleanup` does
    for path in kind.find():
        kind.remove(path)
    left = lab.leftovers()
    assert not [item for item in left if item.endswith(record["cgroup"]["name"])
                or veth in item or layer in item or container_id in item], left
    assert not os.path.exists(f"/sys/class/net/{veth}") and not os.path.isdir(layer)
    assert not os.path.exists(bridge.STATE / f"{veth}.json")  # its place on the bridge too
    assert not os.path.exists(os.path.join(state.root(), "names", "crash"))


# --- SIGKILL at every step of setup and teardown (pycontain.faults) ---------------------------

SETUP = [step for step in faults.STEPS if step.startswith(("cli:", "supervisor:"))
         and step != "supervisor:released"]
TEARDOWN = [step for step in faults.STEPS if step not in SETUP
            and not step.startswith("forkserver:")]  # the API's: test_forkserver.py


@pytest.fixture
def layers():
    """$TMPDIR for the command and its supervisor, where they make writable layers."""
    path = tempfile.mkdtemp(prefix="pycontain-layers-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("step", SETUP + TEARDOWN)
def test_sigkill_at_each_step_leaves_what_cleanup_removes_and_ps_tells_the_truth(
        step, embedded_rootfs, layers):
    """`pycontain run -d` (or `rm -f`) with $PYCONTAIN_KILL_AT: the command or the supervisor
    SIGKILLs itself at `step`. Then `ps` lists as running only a container that runs, `ps -a`
    shows a crashed one as exited, and `pycontain cleanup`'s container removal leaves nothing:
    no run directory or name, no recorded cgroup, veth, port forwarding or layer, and nothing
    in $TMPDIR (where the layers are made: one made and not recorded would stay there)."""
    port = 20000 + int.from_bytes(os.urandom(2)) % 10000
    env = {**os.environ, "TMPDIR": layers}
    killed = {**env, faults.VARIABLE: step}
    command = ["sleep", "60"] if step in SETUP or step.startswith("rm:") else ["true"]
    run = run_cli("run", "-d", "--name", "crash", "--rootfs", embedded_rootfs, "--memory", "32M",
                  "--network", "bridge", "-p", f"{port}:80", "--", *command,
                  env=killed if not step.startswith("rm:") else env)
    if step.startswith("cli:"):
        assert run.returncode == -signal.SIGKILL, (run.returncode, run.stderr)
    elif step.startswith("supervisor:") and step in SETUP:
        refused(run, "ended before it started the container")
    else:
        assert run.returncode == 0, run.stderr
    [container_id] = state.ids() or [None]
    if step == "cli:forked":  # the supervisor carries on without the command
        until(lambda: state.read(container_id)["status"] == "running")
    if step.startswith("rm:"):  # `rm` of a crashed container: it releases what is left
        supervisor = state.read(container_id)["supervisor"]
        assert state.send_signal(supervisor, signal.SIGKILL)
        assert state.wait_gone(supervisor, DEADLINE_S)
        done = run_cli("rm", "crash", env=killed)
        assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr)
    record = state.read(container_id) if container_id else {}
    if step in TEARDOWN and not step.startswith("rm:"):
        assert state.wait_gone(record["supervisor"], DEADLINE_S)  # it killed itself at `step`
        record = state.read(container_id)

    # what was made is recorded the moment it exists
    made = {"supervisor:cgroup": ("cgroup",), "supervisor:layer": ("cgroup", "layer"),
            "supervisor:network": ("cgroup", "layer", "network")}.get(step, ())
    if step in ("supervisor:spawned", "supervisor:running") or step in TEARDOWN:
        made = ("cgroup", "layer", "network")
    assert [kind for kind in made if not record.get(kind)] == [], record
    if step in TEARDOWN:  # it died at `step`, not after: what the steps before it released
        assert record["status"] == "running", record  # is gone, what comes after is there
        layer, cgroup = record["layer"]["path"], record["cgroup"]["dirs"].values()
        veth_state = bridge.STATE / f"{record['network']['veth']}.json"
        order = ["release:discard-layer", "release:remove-cgroup", "release:release-network",
                 "supervisor:released"]
        at = order.index(step) if step in order else 0 if step == "rm:killed" else 3
        assert step not in order or record["reason"] is None, record
        assert os.path.isdir(layer) == (at < 1), step
        assert all(os.path.isdir(d) for d in cgroup) == (at < 2), step
        assert veth_state.exists() == (at < 3), step

    # ps: running means running; a container whose supervisor is gone is shown exited
    listed = run_cli("ps", "-q")
    every = run_cli("ps", "-a")
    for done in (listed, every):
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    running = {i for i in state.ids() if state.alive(state.read(i).get("supervisor"))
               and state.alive(state.read(i).get("container"))}
    assert {line for line in listed.stdout.split()} == {i[:12] for i in running}, listed.stdout
    if step == "cli:forked":
        assert running == {container_id}
    elif container_id is not None:
        line = ps_line(container_id, "-a") or ""
        assert "Exited (" in line and "Up " not in line, every.stdout
        setup = step in SETUP and step != "supervisor:running"  # which: starting, or watching
        assert ("killed while starting it" in line) == setup, (step, line)
        assert inspect(container_id)["status"] == "exited"

    # `pycontain cleanup` removes every container: what the crash left goes with it
    [kind] = [k for k in lab.kinds() if k.name == "container"]
    for path in kind.find():
        kind.remove(path)
    assert kind.find() == [] and os.listdir(layers) == [], os.listdir(layers)
    for directory in ((record.get("cgroup") or {}).get("dirs") or {}).values():
        assert not os.path.exists(directory), directory
    veth = (record.get("network") or {}).get("veth")
    if veth:
        assert not os.path.exists(f"/sys/class/net/{veth}")
        assert not os.path.exists(bridge.STATE / f"{veth}.json")
    assert f"dport {port}" not in nft.rules()
    if record.get("container"):
        assert state.wait_gone(record["container"], DEADLINE_S)
