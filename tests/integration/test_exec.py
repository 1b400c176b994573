"""`pycontain exec` and `top` on the real kernel, and run's -e, --env-file, -w, -u, -v, -t
(pycontain.nsenter, fs.volumes, security.identity, terminal, observe.top).

The containers live in a run directory of this test's own (test_lifecycle's fixture); waits
are on events (a file appears, a state changes), never fixed sleeps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from pycontain import state

from .conftest import PYCONTAIN, run_cli
from .test_lifecycle import detach, inspect, refused, run_dir, until  # noqa: F401 (fixture)

SECURITY = ("CapEff", "CapBnd", "CapPrm", "NoNewPrivs", "Seccomp")


def status_fields(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())
            if k in SECURITY}


@pytest.fixture
def web(embedded_rootfs):
    """A running detached container with a rootfs, its own cgroup and every namespace."""
    container_id = detach("--name", "web", "--rootfs", embedded_rootfs, "--pids-limit", "50",
                          "--", "sleep", "300")
    yield inspect(container_id)
    run_cli("rm", "-f", container_id)


def test_exec_joins_every_namespace_and_the_cgroup_of_the_first_process(web):
    pid = web["pid"]
    done = run_cli("exec", "web", "--", "sh", "-c",
                   "for n in /proc/self/ns/*; do echo ${n##*/} $(readlink $n); done; "
                   "cat /proc/self/cgroup; echo $$")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    inside = dict(line.split(" ", 1) for line in lines if " " in line and ":[" in line)
    for name in ("ipc", "mnt", "net", "pid", "uts", "cgroup", "user", "time"):
        assert inside[name] == os.readlink(f"/proc/{pid}/ns/{name}"), name
    assert inside["pid"] != os.readlink("/proc/self/ns/pid")  # really another one
    with open(f"/proc/{pid}/cgroup") as f:
        assert sorted(x for x in lines if x.count(":") == 2 and x[0].isdigit()) == sorted(
            f.read().splitlines())  # the same cgroup on every hierarchy
    assert int(lines[-1]) > 1  # a process of the PID namespace, not its init


def test_the_exec_process_has_the_containers_capabilities_no_new_privs_and_filter(web):
    with open(f"/proc/{web['pid']}/status") as f:
        first = status_fields(f.read())
    assert first["Seccomp"] == "2" and first["NoNewPrivs"] == "1"  # pycontain run's defaults
    done = run_cli("exec", "web", "cat", "/proc/self/status")
    assert done.returncode == 0, done.stderr
    assert status_fields(done.stdout) == first
    mine = status_fields(open("/proc/self/status").read())
    assert mine["CapBnd"] != first["CapBnd"]  # the test's own are not what it shows


def test_exec_takes_w_e_u_and_exits_as_its_command(web):
    done = run_cli("exec", "-w", "/tmp", "-e", "GREETING=hi", "-u", "nobody", "web",
                   "sh", "-c", "pwd; echo $GREETING $HOSTNAME; id -u; exit 7")
    assert done.returncode == 7, done.stderr
    assert done.stdout.split() == ["/tmp", "hi", web["id"][:12], "65534"]
    assert run_cli("exec", "web", "sh", "-c", "kill -9 $$").returncode == 137
    refused_127 = run_cli("exec", "web", "nosuch")
    assert refused_127.returncode == 127 and "got 'nosuch'" in refused_127.stderr
    assert run_cli("exec", "web", "cat").stdout == ""  # without -i stdin is /dev/null
    piped = subprocess.run([*PYCONTAIN, "exec", "-i", "web", "cat"], input="typed\n",
                           capture_output=True, text=True, timeout=60)
    assert (piped.returncode, piped.stdout) == (0, "typed\n")


def test_exec_is_refused_for_a_stopped_paused_or_unknown_container(web, embedded_rootfs):
    refused(run_cli("exec", "nosuch", "true"), "CONTAINER must be the id, an id prefix or "
                                               "the name of a container")
    assert run_cli("pause", "web").returncode == 0
    refused(run_cli("exec", "web", "true"), "CONTAINER must be a running container, not a "
                                            "paused one, got 'web'\n  hint: its processes are "
                                            "frozen: `pycontain unpause web` first")
    assert run_cli("unpause", "web").returncode == 0
    assert run_cli("stop", "-t", "0", "web").returncode == 0
    refused(run_cli("exec", "web", "true"), "CONTAINER must be a running container, got 'web'"
                                            "\n  hint: it is exited")
    refused(run_cli("exec", "web"), "the command after -- must be one or more words")
    done = subprocess.run([*PYCONTAIN, "exec", "-it", "web", "sh"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    refused(done, "the input device is not a TTY")


def top_pids(reference: str) -> list[int]:
    done = run_cli("top", reference)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["PID", "USER", "TIME", "CMD"]
    return [int(r.split()[0]) for r in rows]


def test_top_lists_the_containers_processes_and_an_exec_among_them(web, tmp_path):
    assert top_pids("web") == [web["pid"]]
    background = subprocess.Popen([*PYCONTAIN, "exec", "web", "sleep", "301"])
    try:
        # until the exec'd process has exec'd: for a moment the cgroup also holds the `pycontain
        # exec` process that joins it, forks the one inside, and exits (seen in the v2 guest)
        rows = until(lambda: (r := run_cli("top", "web").stdout.splitlines())
                     and [c.split()[3:] for c in r[1:]] == [["sleep", "300"], ["sleep", "301"]]
                     and r)
        assert len(rows) == 3
        assert rows[2].split()[0] != str(background.pid)  # the exec'd one, not the command
        assert all(r.split()[1] == "root" for r in rows[1:])
    finally:
        assert run_cli("stop", "-t", "0", "web").returncode == 0
        assert background.wait(timeout=30) == 137  # its pid namespace's init was killed
    refused(run_cli("top", "web"), "CONTAINER must be a running container")


def test_run_takes_e_env_file_w_and_u(embedded_rootfs, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# the database\nUSER_NAME=app\nBOTH=file\n\n")
    done = run_cli("run", "--rootfs", embedded_rootfs, "--env-file", str(env_file),
                   "-e", "BOTH=flag", "-e", "EMPTY=", "-w", "/etc", "-u", "1000:1001",
                   "--", "sh", "-c", 'pwd; echo "$USER_NAME $BOTH [$EMPTY] $PATH"; id -u; '
                   "id -g; grep CapEff /proc/self/status")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "/etc", "app flag [] /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "1000", "1001", "CapEff:\t0000000000000000"]  # a user other than root keeps none
    named = run_cli("run", "--rootfs", embedded_rootfs, "-u", "nobody", "--", "id", "-un")
    assert (named.returncode, named.stdout) == (0, "nobody\n"), named.stderr
    refused(run_cli("run", "--rootfs", embedded_rootfs, "-u", "ghost", "--", "true"),
            "-u must be UID[:GID] as numbers, or a name[:group] the container's /etc/passwd")
    refused(run_cli("run", "-w", "etc", "--", "true"), "-w must be an absolute path")
    refused(run_cli("run", "-e", "A B=1", "--", "true"), "-e must be K=V or K")
    refused(run_cli("run", "--env-file", str(tmp_path / "none"), "--", "true"),
            "--env-file must be a readable file of K=V lines")


def test_a_volume_is_visible_and_ro_refuses_writes(embedded_rootfs, tmp_path):
    shared = tempfile.mkdtemp(prefix="pycontain-volume-")
    try:
        with open(f"{shared}/from-host", "w") as f:
            f.write("hello\n")
        done = run_cli("run", "--rootfs", embedded_rootfs, "-v", f"{shared}:/data",
                       "-v", f"{shared}:/frozen:ro", "--", "sh", "-c",
                       "cat /data/from-host; echo back > /data/from-container; "
                       "echo no > /frozen/x || echo refused")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "hello\nrefused\n"
        assert "Read-only file system" in done.stderr
        assert sorted(os.listdir(shared)) == ["from-container", "from-host"]
        with open(f"{shared}/from-container") as f:
            assert f.read() == "back\n"
        # the mount point went with the container's throw-away layer; the image is unchanged
        assert not os.path.exists(f"{embedded_rootfs}/data")
        with open("/proc/self/mountinfo") as f:
            assert shared not in f.read()  # nothing mounted on the host
    finally:
        for name in os.listdir(shared):
            os.unlink(f"{shared}/{name}")
        os.rmdir(shared)


def test_bad_volumes_are_refused_with_the_flag_named(embedded_rootfs, tmp_path):
    for given, message in (
            ("data:/data", "-v must be an absolute host path (HOST in HOST:CONTAINER), got "
                           "'data:/data'"),
            (f"{tmp_path}/none:/data", "-v must be a host path that exists"),
            (f"{tmp_path}:data", "-v must be an absolute container path other than /"),
            (f"{tmp_path}:/proc/sys", "-v must be a container path not over /proc, /sys or "
                                      "/dev"),
            (f"{tmp_path}:/dev", "-v must be a container path not over /proc"),
            (f"{tmp_path}", "-v must be HOST:CONTAINER or HOST:CONTAINER:ro"),
            (f"{tmp_path}:/data:rx", "-v must be HOST:CONTAINER or HOST:CONTAINER:ro")):
        refused(run_cli("run", "--rootfs", embedded_rootfs, "-v", given, "--", "true"),
                message)
    refused(run_cli("run", "-v", f"{tmp_path}:/data", "--", "true"), "-v /data needs --rootfs")


def test_run_and_exec_t_give_the_command_a_terminal_of_this_size(web, embedded_rootfs):
    # A pty of our own stands in for the user's terminal: stdin, stdout and stderr on it.
    import fcntl
    import select
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 77, 0, 0))
    program = ("import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))")
    for words in (["run", "-t", "--rootfs", embedded_rootfs, "--"],
                  ["exec", "-t", "web"]):
        process = subprocess.Popen([sys.executable, "-c", program, *PYCONTAIN, *words, "sh",
                                    "-c", "stty size; [ -t 0 ] && [ -t 1 ] && echo tty; echo end"],
                                   stdin=slave, stdout=slave, stderr=slave)
        output = b""
        while b"end" not in output:  # what the command wrote, through pycontain, to our pty
            assert select.select([master], [], [], 30)[0], output
            output += os.read(master, 4096)
        assert process.wait(timeout=60) == 0, output
        lines = output.decode().replace("\r", "").splitlines()
        assert lines[:3] == ["33 77", "tty", "end"], lines  # the window size copied
    os.close(master)
    os.close(slave)
    refused(run_cli("run", "-d", "-t", "--", "true"), "-t must be used only without -d")


def test_exec_into_a_user_namespace_is_its_root_with_the_first_processs_sets(embedded_rootfs):
    container_id = detach("--user-namespace", "--rootfs", embedded_rootfs, "--", "sleep", "300")
    try:
        first = inspect(container_id)["pid"]
        done = run_cli("exec", container_id, "sh", "-c",
                       "id -u; readlink /proc/self/ns/user; cat /proc/self/status")
        assert done.returncode == 0, done.stderr
        uid, user_ns, *status = done.stdout.splitlines()
        assert (uid, user_ns) == ("0", os.readlink(f"/proc/{first}/ns/user"))
        with open(f"/proc/{first}/status") as f:
            assert status_fields("\n".join(status)) == status_fields(f.read())
        assert "Uid:\t0\t0\t0\t0" in status  # root there, not the overflow id `nobody`
    finally:
        run_cli("rm", "-f", container_id)


#: `pycontain exec web true` with a pause before the last step (exec), in a process of its own
#: (nsenter.start returns only once the command has exec'd): the joining child is still the
#: host's interpreter, in the container's PID namespace, with the container's capabilities.
#: argv: READY_FD GO_FD DUMPABLE; DUMPABLE=1 puts it back as a joiner without the defence.
JOINER = """
import os, sys
from pycontain import nsenter, syscalls
from pycontain.syscalls import PrctlOption
ready, go, dumpable = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
steps = nsenter._steps()
def pause(wire, channel):
    if dumpable:
        syscalls.prctl(PrctlOption.PR_SET_DUMPABLE, 1)
    os.write(ready, str(os.getpid()).encode())
    os.read(go, 1)
nsenter._steps = lambda: (*steps[:-1], pause, steps[-1])
record = nsenter.target("web")
os.waitpid(nsenter.start(record, nsenter.prepare(record, ["true"])), 0)
"""


@pytest.mark.parametrize("dumpable, opened", [(True, True), (False, False)])
def test_the_joining_interpreter_is_not_dumpable_until_it_execs(web, dumpable, opened):
    # only opened for reading, never written: this is the real interpreter (CVE-2019-5736 on a
    # throw-away copy is test_audit's)
    from pycontain import fresh_python

    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    joiner = subprocess.Popen(fresh_python(JOINER, str(ready_w), str(go_r), str(int(dumpable)),
                                           same_path=True), pass_fds=(ready_w, go_r))
    os.close(ready_w)
    os.close(go_r)
    try:
        inside = int(os.read(ready_r, 32) or b"0")
        assert inside > 0, "the joiner did not reach its pause"
        seen = run_cli("exec", "web", "sh", "-c", f"readlink /proc/{inside}/exe; "
                       f"(exec 3< /proc/{inside}/exe) 2>&1 && echo opened")
    finally:
        os.close(go_w)  # resumes it: EOF
        os.close(ready_r)
        assert joiner.wait(timeout=20) == 0
    assert ("opened" in seen.stdout.splitlines()) is opened, seen.stdout + seen.stderr
    if not opened:
        assert "Permission denied" in seen.stdout, seen.stdout


# --- served by the supervisor (pycontain.exec_socket) ---------------------------------------

def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


def test_the_supervisor_is_the_exec_processs_parent_and_forwards_the_commands_signals(web):
    out = tempfile.mkdtemp(prefix="pycontain-exec-")
    try:
        # the exec'd shell writes its host pid (from outside: its own $$ is the namespace's)
        # and says ready on the command's own stdout, which is a file of ours
        with open(f"{out}/stdout", "w") as stdout:
            command = subprocess.Popen(
                [*PYCONTAIN, "exec", "web", "sh", "-c",
                 "trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 0.1; done"],
                stdout=stdout, stderr=subprocess.PIPE, text=True)
        until(lambda: "ready" in open(f"{out}/stdout").read())
        inside = [p for p in top_pids("web") if p != web["pid"]]
        assert len(inside) >= 1
        shell = next(p for p in inside if open(f"/proc/{p}/comm").read().strip() == "sh")
        assert parent_of(shell) == web["supervisor"]["pid"]  # not the command's child
        assert parent_of(shell) != command.pid
        command.terminate()  # SIGTERM to the command: forwarded, and the trap's status back
        assert command.wait(timeout=30) == 5, command.stderr.read() if command.stderr else ""
        assert open(f"{out}/stdout").read().splitlines() == ["ready", "got TERM"]
    finally:
        for name in os.listdir(out):
            os.unlink(os.path.join(out, name))
        os.rmdir(out)


def test_the_exec_command_loads_neither_json_nor_the_joining_code(web):
    # the launcher's own interpreter flags (-I -S), and -X importtime to see what it loads
    entry = os.path.join(os.path.dirname(sys.executable), "pycontain")
    with open(entry) as f:
        program = f.read().split("\n", 1)[1]  # after its #! line
    done = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c", program, "exec",
                           "web", "true"], capture_output=True, text=True, timeout=60,
                          env={**os.environ})
    assert done.returncode == 0, done.stderr
    loaded = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
              if line.startswith("import time:")}
    assert "pycontain.exec_socket" in loaded  # the test sees what it claims to see
    assert not loaded & {"json", "re", "pycontain.nsenter", "pycontain.init",
                         "pycontain.security.seccomp", "pycontain.runtime"}, loaded


def test_a_command_killed_leaves_its_process_running_and_a_bad_request_no_harm(web):
    from pycontain import exec_socket

    command = subprocess.Popen([*PYCONTAIN, "exec", "web", "sleep", "302"])
    # once it has exec'd (for a moment the joining interpreter is in the cgroup too)
    rows = until(lambda: [p for p in top_pids("web") if p != web["pid"] and open(
        f"/proc/{p}/cmdline").read().split("\0")[:2] == ["sleep", "302"]])
    command.kill()  # SIGKILL: nothing is forwarded; the process runs on, as docker's does
    command.wait()
    assert top_pids("web")[1:] == rows
    # a request that is not one: the supervisor answers with an error and goes on serving
    sock = exec_socket.connect("web")
    sock.sendall(b"not marshal")
    answer, _ = exec_socket.receive(sock)
    assert answer is not None and "error" in answer
    sock.close()
    assert run_cli("exec", "web", "true").returncode == 0
    assert run_cli("stop", "-t", "0", "web").returncode == 0  # the sleep dies with it
    assert not any(os.path.exists(f"/proc/{p}") for p in rows)


def test_exec_serves_a_run_directory_longer_than_a_socket_path(embedded_rootfs, monkeypatch):
    deep = tempfile.mkdtemp(prefix="pycontain-run-")
    root = os.path.join(deep, "x" * 60)  # <root>/<64 hex>/exec.sock: over sun_path's 108
    os.mkdir(root)
    monkeypatch.setenv("PYCONTAIN_RUN_DIR", root)
    try:
        container_id = detach("--rootfs", embedded_rootfs, "--", "sleep", "300")
        assert len(os.path.join(root, container_id, "exec.sock")) > 108
        done = run_cli("exec", container_id, "echo", "reached")
        assert (done.returncode, done.stdout) == (0, "reached\n"), done.stderr
        assert run_cli("rm", "-f", container_id).returncode == 0
    finally:
        for path in state.leftover_containers():
            state.remove_container(path)
        if os.path.isdir(os.path.join(root, state.NAMES)):
            os.rmdir(os.path.join(root, state.NAMES))
        os.rmdir(root)
        os.rmdir(deep)


def test_orphans_of_an_exec_without_a_pid_namespace_are_reaped(embedded_rootfs):
    container_id = detach("--namespaces", "mnt,uts", "--rootfs", embedded_rootfs, "--",
                          "sleep", "300")
    supervisor = inspect(container_id)["supervisor"]["pid"]
    try:
        # the shell exits at once; its background sleep is orphaned to the nearest subreaper,
        # the supervisor, which must reap it when it ends (no zombie left)
        done = run_cli("exec", container_id, "sh", "-c", "sleep 0.3 & echo $!")
        assert done.returncode == 0, done.stderr

        def children() -> list[str]:
            with open(f"/proc/{supervisor}/task/{supervisor}/children") as f:
                return f.read().split()
        until(lambda: len(children()) == 1)  # only the container's first process again
    finally:
        assert run_cli("rm", "-f", container_id).returncode == 0
