"""PID namespaces without root: the `init` option, the reaping loop, and reading PIDs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pycontain import cli, init, syscalls
from pycontain.errors import SpecError
from pycontain.namespaces import pid
from pycontain.runtime import Spec
from pycontain.testing import RecordingSyscalls, init_spec


def test_init_is_off_by_default_and_travels_to_the_first_process():
    assert Spec(["true"]).init is False
    assert Spec(["true"]).to_wire()["init"] is False
    spec = Spec(["true"], namespaces="pid,mnt", init=True)
    assert spec.to_wire()["init"] is True
    assert "init=True" in repr(spec) and "init" not in repr(Spec(["true"]))


def test_init_needs_a_pid_namespace():
    with pytest.raises(SpecError) as info:
        Spec(["true"], namespaces={"uts"}, init=True)
    assert str(info.value).startswith("`init` must be used only with 'pid' among the namespaces")
    assert "(lesson 03)" in str(info.value)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_init_must_be_a_bool(value):
    with pytest.raises(SpecError, match="`init` must be True or False"):
        Spec(["true"], namespaces={"pid"}, init=value)


def test_the_command_line_takes_init_as_a_flag():
    quick = cli._quick_run_args(["run", "--init", "--namespaces", "pid", "--", "true"])
    assert quick is not None and quick.init is True and quick.namespaces == "pid"
    assert cli._quick_run_args(["run", "--", "true"]).init is False  # type: ignore[union-attr]
    parsed = cli._parser().parse_args(["run", "--init", "--", "true"])
    assert parsed.init is True


def test_setup_imports_the_reaping_loop_before_it_can_be_out_of_reach(monkeypatch, tmp_path):
    import pycontain.namespaces

    monkeypatch.delitem(sys.modules, "pycontain.namespaces.pid")
    monkeypatch.delattr(pycontain.namespaces, "pid")

    class Quiet(init.Channel):
        def __init__(self) -> None:
            super().__init__(-1, -1)

        def send(self, **message: object) -> None:
            pass

    class Pivoting(RecordingSyscalls):
        """Notes whether PID 1's loop is loaded when the interpreter's library goes."""

        def pivot_root(self, new_root: str, put_old: str) -> None:
            loaded.append("pycontain.namespaces.pid" in sys.modules)
            super().pivot_root(new_root, put_old)

    loaded: list[bool] = []
    kernel = Pivoting()
    previous = syscalls.use(kernel)
    try:
        init.setup(init_spec(namespaces=["mnt", "pid"], rootfs=str(tmp_path), init=True),
                   Quiet())
    finally:
        syscalls.use(previous)
    assert loaded == [True]
    assert kernel.names().count("fork") == 2  # into the PID namespace, then PID 2


def test_exit_status_is_the_shells_view():
    assert pid.exit_status(0) == 0
    assert pid.exit_status(7 << 8) == 7
    assert pid.exit_status(9) == 137


# reap_until as a subreaper: without root, orphans re-parent to the nearest process that set
# PR_SET_CHILD_SUBREAPER (prctl(2)) instead of a namespace's PID 1, so the loop can be tried here.
REAPER = textwrap.dedent("""
    import ctypes, json, os, sys
    sys.path.insert(0, {root!r})
    from pycontain.namespaces import pid
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    child = os.fork()
    if child == 0:
        os.execv("/bin/sh", ["sh", "-c", {workload!r}])
    status = pid.reap_until(child)
    left = open(f"/proc/self/task/{{os.getpid()}}/children").read().split()
    print(json.dumps({{"code": pid.exit_status(status), "children_left": left}}))
""")


def reaper(workload: str) -> dict[str, object]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = REAPER.format(root=root, workload=workload)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=20, check=True)
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_reap_until_reaps_orphans_and_returns_the_childs_status():
    answer = reaper("for i in 1 2 3 4; do (sleep 0.05 &); done; sleep 0.5; exit 4")
    assert answer == {"code": 4, "children_left": []}  # no zombie (nor anything else) left


def test_reap_until_forwards_sigterm_to_the_child():
    # the child asks its parent, the reaper, to be sent SIGTERM: reap_until passes it back
    answer = reaper("sleep 0.2; kill -TERM $PPID; exec sleep 10")
    assert answer == {"code": 128 + 15, "children_left": []}


def test_orphan_maker_is_bounded():
    argv = pid.orphan_maker(count=3, interval_s=0.01, then="sleep 5")
    assert argv[:2] == ["sh", "-c"] and argv[2].endswith("& exec sleep 5")
    for count, interval_s in [(0, 0.1), (1001, 0.1), (5, 0), (5, 11)]:
        with pytest.raises(ValueError, match="`count` must be 1-1000"):
            pid.orphan_maker(count=count, interval_s=interval_s)


def test_pids_read_from_the_host_view():
    me = os.getpid()
    assert pid.nspid(me)[-1] == pid.pid_inside(me)
    assert pid.alive([me, pid.Process(me, 1, 0, "R", "x")]) == [me, me]


def test_process_table_shows_zombies():
    table = pid.ProcessTable([pid.Process(10, 1, 0, "S", "sleep"),
                              pid.Process(12, 3, 1, "Z", "sh")])
    assert list(table.zombies()) == [table[1]] and table[1].zombie
    assert "<b>Z</b>" in table._repr_html_()
    assert repr(table).splitlines()[0].split("  ")[0] == "host PID"
