"""Lesson 22's checks: the web server and the graceful stop pass when right, and name each wrong
turn a newcomer takes with its own message; whatever the learner's function started (a named
or unnamed detached container, one in this process, a foreground `pycontain run`) is gone
afterwards, its cgroup, veth, name and state directory too, also when the function raises.

Every test keeps the notebook's run directory in one of its own ($PYCONTAIN_RUN_DIR), as the
lesson does; the checks make theirs under it and must remove it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import pytest

import pycontain
from pycontain import cgroups, runtime, settings, state
from pycontain.checks import CheckFailed, lesson22
from pycontain.fs import rootfs
from pycontain.namespaces import net

ROOT = str(rootfs.require_tools(rootfs.ensure(), "httpd"))
PAGE = "mkdir -p /tmp/www && echo hello > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"
RIGHT = ("-d", "--name", "{name}", "--memory", "32M", "--network", "bridge", "-p", "{port}:80",
         "--rootfs", ROOT)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(autouse=True)
def run_dir(monkeypatch):
    """The notebook's run directory: the checks' own go under it, and must leave it empty."""
    root = tempfile.mkdtemp(prefix="pycontain-run-")
    monkeypatch.setenv(settings.RUN_DIR_VARIABLE, root)
    yield root
    left = os.listdir(root)
    for path in state.leftover_containers():
        state.remove_container(path)
    os.rmdir(os.path.join(root, state.NAMES)) if os.path.isdir(f"{root}/names") else None
    os.rmdir(root)
    assert not left, f"the check left these in the run directory: {left}"
    assert runtime.unwaited() == []


class Learner:
    """A learner's function: runs `pycontain run` with the given options and command, and
    notes what the container it made holds (cgroup, veth, state directory, name), to look for
    after the check."""

    def __init__(self, *options: str, command: str = PAGE, then: object = None,
                 returns: str = "id") -> None:
        self.options, self.command, self.then, self.returns = options, command, then, returns
        self.held: list[tuple[str, str]] = []
        self.run_dirs: list[str] = []

    def __call__(self, name: str, port: int = 0) -> object:
        done = cli("run", *[o.format(name=name, port=port) for o in self.options], "--",
                   "sh", "-c", self.command)
        self.run_dirs.append(settings.run_dir())
        for container_id in state.ids():
            record = state.read(container_id)
            self.held.append(("state", state.directory(container_id)))
            self.held += [("cgroup", d) for d in (record.get("cgroup") or {"dirs": {}})[
                "dirs"].values()]
            if record.get("network"):
                self.held.append(("veth", record["network"]["veth"]))
            if record.get("name"):
                self.held.append(("name", os.path.join(state.root(), state.NAMES,
                                                       record["name"])))
        if self.then is not None:
            raise RuntimeError(self.then)
        return {"id": done.stdout.strip(), "completed": done, "raw": done.stdout}[self.returns]

    def left(self) -> list[tuple[str, str]]:
        links = {link["name"] for link in net.links()}
        return [(kind, what) for kind, what in self.held
                if (what in links if kind == "veth" else os.path.lexists(what))] + [
            ("run dir", d) for d in self.run_dirs if os.path.exists(d)]


def test_a_right_server_passes_and_shows_the_library_start():
    learner = Learner(*RIGHT)
    passed = lesson22.check_web_server(learner)
    assert "ran detached with memory" in passed and "'hello'" in passed
    assert lesson22.check_web_server.answers  # shown once it passed
    assert learner.held and not learner.left()
    assert learner.run_dirs[0] != settings.run_dir()  # the check's own, under the notebook's
    assert os.path.dirname(learner.run_dirs[0]) == settings.run_dir()


def without(*flags: str) -> tuple[str, ...]:
    """RIGHT without each flag in `flags` (and the value after it)."""
    options, skip = [], False
    for option in RIGHT:
        if skip:
            skip = False
            continue
        if option in flags:
            skip = option != "-d"
            continue
        options.append(option)
    return tuple(options)


WRONG_TURNS = [
    (Learner(*without("-d")), "printed no id and made no container"),
    (Learner(*without("--network")), "refused its options before making anything"),
    (Learner(*without("--name")), r"no container is called 'web22'.*\(no name\)"),
    (Learner(*without("--memory")), r"nothing limits the container's memory \(memory\.(max|"
                                    r"limit_in_bytes)"),
    (Learner(*without("--rootfs"), command="exec httpd -f -p 80 -h /nonexistent-lesson22"),
     "no rootfs of its own: it sees the host's files"),
    (Learner(*RIGHT, command=PAGE.replace("httpd -f", "httpd")),
     "exited 0.*goes to the background"),
    (Learner(*RIGHT, command="exec httpd -f -p 80 -h /tmp"), "404 Not Found: there is no "
                                                             "index.html"),
    (Learner(*RIGHT[:-3], "80:{port}", *RIGHT[-2:]), "the pair is the wrong way round"),
    (Learner(*RIGHT[:-3], "{port}:8080", *RIGHT[-2:]), "goes to the container's port 8080"),
    (Learner(*RIGHT, returns="completed"), "returned a CompletedProcess.*holds the id"),
    (Learner(*RIGHT, returns="raw"), None),  # the id with its newline: right, stripped
    (Learner(*without("--name"), returns="completed"), "returned a CompletedProcess"),
    (Learner(*RIGHT, then="a learner's mistake"), "raised RuntimeError: a learner's mistake"
                                                   r".*the check removed web22"),
    (Learner(*without("--name"), then="oops"), r"raised RuntimeError: oops.*the check removed "
                                               "[0-9a-f]{12}"),
]


@pytest.mark.parametrize("learner,message", WRONG_TURNS,
                         ids=[str(i) for i in range(len(WRONG_TURNS))])
def test_the_check_names_the_wrong_turn_and_leaves_nothing(learner, message):
    if message is None:
        assert lesson22.check_web_server(learner)
    else:
        with pytest.raises(CheckFailed, match=message) as info:
            lesson22.check_web_server(learner)
        assert "--memory" not in str(info.value) and "-p 18022:80" not in str(info.value)
    assert not learner.left(), learner.left()


def cgroup_dirs(pid: int) -> list[str]:
    """The pycontain cgroup directories process `pid` is in, by /proc/PID/cgroup."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.strip().split(":", 2) for line in f]
    unified = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else \
        "/sys/fs/cgroup"
    return [(f"/sys/fs/cgroup/{controllers.removeprefix('name=')}" if controllers else unified)
            + path for _, controllers, path in lines if "pycontain-ctr-" in path]


@pytest.mark.skipif(cgroups.detect().version("memory") != 2,
                    reason="memory.high is cgroup v2's (on v1 `run` refuses it)")
def test_a_memory_high_alone_is_named_as_no_hard_limit():
    learner = Learner(*[o if o != "--memory" else "--memory-high" for o in RIGHT])
    with pytest.raises(CheckFailed, match="has a memory.high, which throttles it.*memory.max"):
        lesson22.check_web_server(learner)
    assert not learner.left(), learner.left()


@pytest.mark.parametrize("waits,limit_s,message", [
    (True, 10.0, r"did not return within 10 s \(the check interrupted the 1 command.*without -d"),
    (False, 60.0, r"made no container.*the check interrupted the 1 command"),
])
def test_a_foreground_run_is_interrupted_and_releases_all(waits, limit_s, message, monkeypatch):
    """No -d and no --name: `pycontain run` waits for its server, and the learner's function
    for it (or returns, leaving it running); the check interrupts it as Ctrl-C does, and the
    command itself releases the cgroup, veth and DNAT rule."""
    from pycontain import procfs
    from pycontain.network import bridge, nft

    monkeypatch.setattr(lesson22, "START_LIMIT_S", limit_s)  # time to see what it holds
    held: list[str] = []

    def foreground(name, port):
        options = [o.format(name=name, port=port) for o in without("-d", "--name")]
        command = subprocess.Popen([sys.executable, "-m", "pycontain", "run", *options, "--",
                                    "sh", "-c", PAGE], stdout=subprocess.PIPE, text=True)
        records: list[str] = []
        deadline = time.monotonic() + 30
        while not (held and records) and command.poll() is None and time.monotonic() < deadline:
            family = {command.pid}
            for pid in procfs.pids() if not held else ():  # the command's, then its children's
                try:
                    if procfs.status(pid).ppid in family:
                        family.add(pid)
                        held.extend(cgroup_dirs(pid))
                except (FileNotFoundError, ProcessLookupError):
                    continue
            records = [str(p) for p in bridge.STATE.glob("*.json")
                       if f"[{port}, 80" in p.read_text()]
            time.sleep(0.05)
        held.extend(records)
        return command.communicate()[0] if waits else ""

    with pytest.raises(CheckFailed, match=message):
        lesson22.check_web_server(foreground)
    assert any("pycontain-ctr-" in d for d in held) and any(d.endswith(".json") for d in held), held
    assert not [d for d in held if os.path.exists(d)]
    assert "dport 18022" not in nft.rules()


def test_a_container_started_in_this_process_is_stopped():
    started = []

    def in_process(name, port):
        started.append(pycontain.spawn(["sleep", "60"], pids_max=10))
        return started[0].id

    with pytest.raises(CheckFailed, match="made no container"):
        lesson22.check_web_server(in_process)
    assert not started[0].running and runtime.unwaited() == []
    assert not any(os.path.isdir(d) for d in started[0].cgroup.dirs.values())


GRACEFUL = "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done"
DETACHED = ("-d", "--name", "{name}", "--rootfs", ROOT)


def test_a_graceful_stop_passes():
    learner = Learner(*DETACHED, command=GRACEFUL)
    assert "said 'bye' and ended with status 0" in lesson22.check_graceful_stop(learner)
    assert not learner.left()


@pytest.mark.parametrize("command,message", [
    ("echo ready; while :; do sleep 0.1; done", "has no handler for SIGTERM.*lacks bit 15"),
    (GRACEFUL.replace("while :; do sleep 0.1; done", "sleep 60"),
     "catches SIGTERM.*did not run its handler in time.*foreground"),
    (GRACEFUL.replace("; exit 0", ""), "said bye, but went on: the handler must end the shell"),
    (GRACEFUL.replace("exit 0", "exit 3"), "with status 3.*asks for 0"),
    (GRACEFUL.replace("echo bye; ", ""), "its last word on stdout is 'ready', not 'bye'"),
    (GRACEFUL.replace("echo ready; ", ""), "did not say 'ready' on its stdout within 2 s"),
])
def test_the_stretch_names_the_wrong_turn_and_leaves_nothing(command, message, monkeypatch):
    monkeypatch.setattr(lesson22, "DEADLINE_S", 2.0)
    learner = Learner(*DETACHED, command=command)
    with pytest.raises(CheckFailed, match=message) as info:
        lesson22.check_graceful_stop(learner)
    assert "trap" not in str(info.value)  # where to look, not the line to write
    assert not learner.left(), learner.left()


@pytest.mark.parametrize("options,message", [
    (DETACHED[:1] + DETACHED[3:], "no container is called 'graceful22'.*start_graceful gets"),
    (DETACHED[1:], "printed no id and made no container"),
])
def test_the_stretch_names_a_container_without_its_name_or_not_detached(options, message):
    learner = Learner(*options, command=GRACEFUL)
    with pytest.raises(CheckFailed, match=message):
        lesson22.check_graceful_stop(learner)
    assert not learner.left(), learner.left()


def test_the_stretch_leaves_nothing_when_the_function_raises():
    learner = Learner(*DETACHED, command=GRACEFUL, then="halfway")
    with pytest.raises(CheckFailed, match="raised RuntimeError: halfway.*removed graceful22"):
        lesson22.check_graceful_stop(learner)
    assert learner.held and not learner.left()


def test_the_exercises_have_hints_and_the_stretch_is_marked():
    assert len(lesson22.check_web_server.hints.texts) == 3
    assert lesson22.check_graceful_stop.stretch and not lesson22.check_web_server.stretch
