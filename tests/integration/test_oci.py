"""pycontain-oci on the real kernel: the OCI lifecycle and state, bad input refused with nothing
made, exec --process, and nothing left behind (lesson 24)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from pycontain import state as records

OCI = os.path.join(os.path.dirname(sys.executable), "pycontain-oci")
if not os.path.exists(OCI):
    pytest.skip("pycontain-oci is not installed beside python (make .venv/.dev)",
                allow_module_level=True)


@pytest.fixture
def oci(tmp_path):
    """`oci("create", ...)`: pycontain-oci with its --root and --log in tmp_path; the
    container's output goes to out.txt (a pipe would stay open as long as it runs)."""
    root, log = tmp_path / "root", tmp_path / "log.json"

    def run(*args, timeout=30):
        with open(tmp_path / "out.txt", "a") as out, open(tmp_path / "err.txt", "w+") as err:
            done = subprocess.run([OCI, "--root", str(root), "--log", str(log),
                                   "--log-format", "json", *args], stdout=out, stderr=err,
                                  stdin=subprocess.DEVNULL, text=True, timeout=timeout)
            err.seek(0)
            done.stderr = err.read()  # the runtime's own lines: create's come before exec
        return done

    run.root, run.log, run.out = root, log, tmp_path / "out.txt"
    yield run
    for container_id in (os.listdir(root) if root.exists() else []):
        run("delete", "--force", container_id)
    assert not root.exists() or not os.listdir(root), "a container was left behind"


def make_bundle(path, rootfs, args, **linux):
    """A bundle at `path` with a copy of the embedded rootfs (the bind's mount point is made
    in the root: never in the shared image) and /data bound to path/data."""
    (path / "data").mkdir(parents=True, exist_ok=True)
    if not (path / "rootfs").exists():
        shutil.copytree(rootfs, path / "rootfs", symlinks=True)
    rootfs = "rootfs"
    config = {
        "ociVersion": "1.0.2",
        "process": {"args": args, "env": ["PATH=/bin:/usr/bin"], "cwd": "/",
                    "user": {"uid": 0, "gid": 0}, "noNewPrivileges": True,
                    "capabilities": {k: ["CAP_KILL", "CAP_NET_RAW"]
                                     for k in ("bounding", "effective", "permitted")},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]},
        "root": {"path": rootfs, "readonly": True}, "hostname": "oci-box",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/data", "type": "bind", "source": str(path / "data"),
                    "options": ["rbind"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "uts", "ipc",
                                                       "network")],
                  "resources": {"pids": {"limit": 16}}, **linux}}
    (path / "config.json").write_text(json.dumps(config))
    return path


def state(oci, container_id):
    done = subprocess.run([OCI, "--root", str(oci.root), "state", container_id],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_create_runs_nothing_until_start_and_state_moves_through_the_lifecycle(
        oci, tmp_path, embedded_rootfs):
    bundle = make_bundle(tmp_path / "b", embedded_rootfs,
                         ["sh", "-c", "echo ran > /data/out; exec sleep 30"])
    done = oci("create", "--bundle", str(bundle), "--pid-file", str(tmp_path / "pid"), "c1")
    assert done.returncode == 0, done.stderr
    shown = state(oci, "c1")
    assert shown["status"] == "created" and shown["ociVersion"].startswith("1.")
    assert shown["pid"] == int((tmp_path / "pid").read_text()) and shown["bundle"] == str(bundle)
    assert set(shown) >= {"ociVersion", "id", "status", "pid", "bundle"}
    assert not (bundle / "data" / "out").exists()  # created: the command has not run
    assert oci("start", "c1").returncode == 0
    wait_for(lambda: (bundle / "data" / "out").exists())
    assert state(oci, "c1")["status"] == "running"
    again = oci("start", "c1")
    assert again.returncode == 1 and "it is running: a container starts once" in again.stderr
    refused = oci("delete", "c1")
    assert refused.returncode == 1 and "kill` it first, or `delete --force`" in refused.stderr
    record = json.loads((oci.root / "c1" / "state.json").read_text())
    cgroup = records.cgroup_of(record)
    assert cgroup is not None and cgroup.read("pids.max") == "16"
    assert oci("kill", "c1", "KILL").returncode == 0
    wait_for(lambda: state(oci, "c1")["status"] == "stopped")
    assert state(oci, "c1")["pid"] == 0
    stopped = oci("kill", "c1", "TERM")
    assert stopped.returncode == 1 and "it is stopped: nothing is left to signal" in \
        stopped.stderr
    assert json.loads(oci.log.read_text().splitlines()[-1])["level"] == "error"
    assert oci("delete", "c1").returncode == 0
    assert not (oci.root / "c1").exists()
    assert not any(os.path.isdir(d) for d in cgroup.dirs.values())  # its cgroup is gone


def test_the_container_gets_what_config_json_asks(oci, tmp_path, embedded_rootfs):
    script = ("hostname; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; ulimit -n; "
              "ulimit -Hn; cat /proc/sys/net/ipv4/ping_group_range; (echo x > /oops) 2>&1")
    bundle = make_bundle(tmp_path / "b", embedded_rootfs, ["sh", "-c", script],
                         sysctl={"net.ipv4.ping_group_range": "0 1"})
    assert oci("create", "--bundle", str(bundle), "c2").returncode == 0
    assert oci("start", "c2").returncode == 0
    wait_for(lambda: state(oci, "c2")["status"] == "stopped")
    lines = oci.out.read_text().splitlines()
    assert lines[0] == "oci-box"
    assert lines[1:4] == ["CapEff:\t0000000000002020", "CapBnd:\t0000000000002020",
                          "NoNewPrivs:\t1"]  # CAP_KILL (5), CAP_NET_RAW (13)
    assert lines[4:6] == ["256", "512"]  # RLIMIT_NOFILE
    assert lines[6].split() == ["0", "1"]  # the namespaced sysctl, in its own netns
    assert "Read-only file system" in oci.out.read_text()  # root.readonly
    assert oci("delete", "c2").returncode == 0


def test_a_network_namespace_is_joined_by_its_path(oci, tmp_path, embedded_rootfs):
    holder = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        wait_for(lambda: os.readlink(path) != os.readlink("/proc/self/ns/net"))
        bundle = make_bundle(tmp_path / "b", embedded_rootfs, ["sleep", "30"])
        config = json.loads((bundle / "config.json").read_text())
        config["linux"]["namespaces"][-1]["path"] = path
        (bundle / "config.json").write_text(json.dumps(config))
        assert oci("create", "--bundle", str(bundle), "c3").returncode == 0
        pid = state(oci, "c3")["pid"]
        assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink(path)
        assert oci("delete", "c3").returncode == 0  # created: killed and removed
    finally:
        holder.kill()
        holder.wait()


def test_exec_runs_a_process_file_in_the_running_container(oci, tmp_path, embedded_rootfs):
    bundle = make_bundle(tmp_path / "b", embedded_rootfs, ["sleep", "30"])
    assert oci("create", "--bundle", str(bundle), "c4").returncode == 0
    assert oci("start", "c4").returncode == 0
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sh", "-c", "hostname; echo $GREETING; exit 7"],
                                   "env": ["GREETING=hello", "PATH=/bin"], "cwd": "/data"}))
    done = oci("exec", "--process", str(process), "c4")
    assert done.returncode == 7, done.stderr
    assert oci.out.read_text().splitlines()[-2:] == ["oci-box", "hello"]
    assert oci("delete", "--force", "c4").returncode == 0


@pytest.mark.parametrize("change, words", [
    (lambda b: (b / "config.json").unlink(), "`--bundle` must be a directory holding a "
                                              "config.json"),
    (lambda b: (b / "config.json").write_text("{"), "`config.json` must be valid JSON, got "
                                                   "'line 1 column 2"),
    (lambda b: _edit(b, ociVersion="0.9"), "`ociVersion` must be a 1.x version"),
    (lambda b: _edit(b, root={"path": "../../etc"}), "`root.path` must be a directory inside"),
    (lambda b: _edit(b, mounts=[{"destination": "/x", "type": "nfs", "source": "h:/"}]),
     "`mounts[0].type` must be one of bind, proc"),
    (lambda b: _edit(b, linux={"namespaces": [{"type": "pid"}, {"type": "mount"},
                                              {"type": "uts"}, {"type": "network",
                                                                "path": "/proc/self/ns/ipc"}]}),
     "must be the path of a net namespace"),
])
def test_bad_bundles_are_refused_with_nothing_made(oci, tmp_path, embedded_rootfs, change,
                                                    words):
    bundle = make_bundle(tmp_path / "b", embedded_rootfs, ["true"])
    change(bundle)
    done = oci("create", "--bundle", str(bundle), "bad")
    assert done.returncode == 1 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert words in json.loads(oci.log.read_text().splitlines()[-1])["msg"]
    assert not (oci.root / "bad").exists()


def test_an_id_taken_or_badly_spelt_is_refused(oci, tmp_path, embedded_rootfs):
    bundle = make_bundle(tmp_path / "b", embedded_rootfs, ["sleep", "30"])
    assert oci("create", "--bundle", str(bundle), "same").returncode == 0
    taken = oci("create", "--bundle", str(bundle), "same")
    assert taken.returncode == 1 and "an id no other container of this runtime has" in \
        taken.stderr
    assert state(oci, "same")["status"] == "created"  # the first one untouched
    spelt = oci("create", "--bundle", str(bundle), "no/slash")
    assert spelt.returncode == 1 and "`id` must be one or more of A-Z" in spelt.stderr
    unknown = oci("state", "nobody")
    assert unknown.returncode == 1 and "the id of a container this runtime created" in \
        unknown.stderr


def _edit(bundle, **changes):
    config = json.loads((bundle / "config.json").read_text())
    config.update(changes)
    (bundle / "config.json").write_text(json.dumps(config))


class ConsoleSocket:
    """What conmon does with `--console-socket`: listen on a unix socket, receive the pty's
    master end that the runtime sends (SCM_RIGHTS), and read the container's terminal."""

    def __init__(self, path):
        import socket

        self.path = str(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.listener.settimeout(30)
        self.masters = []

    def master(self):
        import socket

        conn, _ = self.listener.accept()
        with conn:
            name, fds, _flags, _addr = socket.recv_fds(conn, 64, 1)
        assert name == b"/dev/ptmx" and len(fds) == 1  # runc's message
        self.masters.append(fds[0])
        return fds[0]

    def read_until(self, master, end):
        import select

        seen = b""
        while end not in seen:
            assert select.select([master], [], [], 30)[0], seen
            seen += os.read(master, 4096)
        return seen.decode().replace("\r", "")

    def close(self):
        for fd in self.masters:
            os.close(fd)
        self.listener.close()


def test_a_terminal_goes_to_the_console_socket_for_create_and_exec(oci, tmp_path,
                                                                  embedded_rootfs):
    bundle = make_bundle(tmp_path / "b", embedded_rootfs, [
        "sh", "-c", "stty size; [ -t 0 ] && [ -t 1 ] && echo a terminal; echo end; sleep 30"])
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=True, consoleSize={"height": 33, "width": 77})
    (bundle / "config.json").write_text(json.dumps(config))
    console = ConsoleSocket(tmp_path / "console.sock")
    try:
        # without the socket runc refuses, and so does pycontain-oci, before anything is made
        refused = oci("create", "--bundle", str(bundle), "t1")
        assert refused.returncode != 0 and "--console-socket" in refused.stderr
        assert not (oci.root / "t1").exists()
        created = subprocess.Popen([OCI, "--root", str(oci.root), "create", "--bundle",
                                    str(bundle), "--console-socket", console.path, "t1"],
                                   stdin=subprocess.DEVNULL)
        master = console.master()
        assert created.wait(timeout=30) == 0
        assert oci("start", "t1").returncode == 0
        assert console.read_until(master, b"end").splitlines()[:3] == [
            "33 77", "a terminal", "end"]
        process = tmp_path / "process.json"
        process.write_text(json.dumps({"args": ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo a "
                                                "terminal; echo done"], "terminal": True,
                                       "env": ["PATH=/bin"], "cwd": "/"}))
        execd = subprocess.Popen([OCI, "--root", str(oci.root), "exec", "--process",
                                  str(process), "--console-socket", console.path, "t1"],
                                 stdin=subprocess.DEVNULL)
        seen = console.read_until(console.master(), b"done")
        assert seen.splitlines()[:2] == ["a terminal", "done"], seen
        assert execd.wait(timeout=30) == 0
        flat = tmp_path / "flat.json"
        flat.write_text(json.dumps({"args": ["true"], "env": ["PATH=/bin"], "cwd": "/"}))
        refused = oci("exec", "--process", str(flat), "--console-socket", console.path, "t1")
        assert refused.returncode != 0 and "--console-socket" in refused.stderr
        assert oci("delete", "--force", "t1").returncode == 0
    finally:
        console.close()


def test_create_start_and_delete_load_neither_json_nor_re(oci, tmp_path, embedded_rootfs):
    """The three verbs of every container start a fresh interpreter each (runc's whole `start`
    takes about what `import json` does): their JSON goes through pycontain.jsonc."""
    bundle = make_bundle(tmp_path / "b", embedded_rootfs, ["true"])
    with open(OCI) as f:
        program = f.read().split("\n", 1)[1]  # the launcher's code, after its #! line

    def loaded(*words):
        # files, not pipes: the container created holds create's stdout and stderr
        with open(tmp_path / "err", "w+") as err:
            done = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c",
                                   program, "--root", str(oci.root), *words],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err, timeout=60)
            err.seek(0)
            lines = err.read().splitlines()
        assert done.returncode == 0, lines[-5:]
        return {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}

    for words in (["create", "--bundle", str(bundle), "lean"], ["start", "lean"],
                  ["delete", "--force", "lean"]):
        modules = loaded(*words)
        assert "pycontain.jsonc" in modules, words  # the test sees what it claims to see
        assert not modules & {"json", "re", "enum"}, (words, modules & {"json", "re", "enum"})
