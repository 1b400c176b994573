"""Debian's podman, jailed, with pycontain-oci as its runtime (lesson 24 and its tests).

podman is a whole container engine: images, storage, conmon (the small process that watches
each container, holds its stdio and records its exit status), and a runtime it calls for the
kernel work, runc by default. `--runtime` swaps in any program with runc's grammar.

It expects a machine of its own, so `Podman` gives it one it may spoil:

- a cgroup of its own, `pycontain-podman-…`, below this process's cgroup in every hierarchy,
  and a *holder* process in it with a new cgroup namespace and mount namespace, in which the
  hierarchies are mounted again: there the jail's cgroup is `/`, so podman's `libpod_parent`
  and everything it makes stays inside (podman places cgroups from the hierarchy's root);
- every podman command runs in the jail's cgroup and the holder's namespaces (nsenter(1));
- its storage (the vfs driver: plain directories, no overlay mounts), its run directory, its
  configuration (containers.conf, storage.conf, registries.conf: no registry at all) in a
  temporary directory; the image is `podman import` of pycontain's embedded rootfs;
- `close()` removes every container, kills what is left in the jail's cgroup by pid (conmon,
  podman's cleanup processes), removes the cgroups depth first and the directory.

See also: podman(1), podman-run(1), containers.conf(5), containers-storage.conf(5), conmon(8),
cgroup_namespaces(7), nsenter(1).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

from pycontain.errors import ProcessError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

IMAGE = "localhost/pycontain-rootfs:latest"
#: the limits podman would raise beyond what this process may (raising a hard limit is refused
#: here): given with every run, as `--ulimit`
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")


def available() -> str | None:
    """Why podman cannot run here, or None when it can: the program, conmon, root."""
    for program in ("podman", "conmon", "nsenter", "unshare"):
        if shutil.which(program) is None and not os.path.exists(f"/usr/libexec/podman/{program}"):
            return f"{program} is not installed (apt-get install podman conmon)"
    if os.geteuid() != 0:
        return "podman runs rootful here: it needs root"
    return None


def runtime_path() -> str:
    """The `pycontain-oci` program next to this interpreter (the venv's), or on PATH."""
    import sys

    beside = os.path.join(os.path.dirname(sys.executable), "pycontain-oci")
    found = beside if os.path.exists(beside) else shutil.which("pycontain-oci")
    if found is None:
        raise ProcessError("pycontain-oci is not installed",
                           hint="`pip install -e .` (make .venv/.dev) puts it beside python")
    return found


def _hierarchies() -> list[tuple[str, str, str, str]]:
    """(mount point, fs type, options, our cgroup there) of each cgroup hierarchy mounted."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            own[controllers] = path
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            dash = fields.index("-")
            kind, options = fields[dash + 1], fields[dash + 3]
            if kind not in ("cgroup", "cgroup2"):
                continue
            names = ",".join(o for o in options.split(",") if o not in ("rw", "ro") and
                             not o.startswith("nsdelegate") and o != "memory_recursiveprot")
            key = "" if kind == "cgroup2" else names
            found.append((fields[4], kind, names, own.get(key, "/")))
    return found


def leftover_jails() -> list[str]:
    """The temporary directories of jails whose Podman was never closed (a kernel killed)."""
    base = tempfile.gettempdir()
    return sorted(os.path.join(base, n) for n in os.listdir(base)
                  if n.startswith("pycontain-podman-"))


def remove_jail(path: str) -> None:
    """Remove a jail `leftover_jails()` found: its processes killed by pid, its cgroups in
    every hierarchy, its directory."""
    name = os.path.basename(path)
    if not name.startswith("pycontain-podman-"):
        raise ValueError(f"not a podman jail of pycontain's: {path}")
    jail = Podman.__new__(Podman)
    jail.holder, jail.dir = None, path
    jail.cgroups = [c for point, _, _, own in _hierarchies()
                    if os.path.isdir(c := os.path.join(point, own.lstrip("/"), name))]
    jail.close()


class Podman:
    """podman in a jail of its own (see the module's docstring); `close()` leaves nothing."""

    def __init__(self) -> None:
        why = available()
        if why:
            raise ProcessError(f"podman cannot run here: {why}")
        self.runtime = runtime_path()
        self.dir = tempfile.mkdtemp(prefix="pycontain-podman-")
        self.cgroups: list[str] = []
        self.holder: subprocess.Popen[str] | None = None
        try:
            self._configure()
            self._jail()
        except BaseException:
            self.close()
            raise

    def _configure(self) -> None:
        d = self.dir
        for sub in ("storage", "run", "tmp", "conf"):
            os.makedirs(f"{d}/{sub}")
        with open(f"{d}/conf/storage.conf", "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{d}/storage"\n'
                    f'runroot = "{d}/run"\n')
        with open(f"{d}/conf/containers.conf", "w") as f:
            f.write('[containers]\nnetns = "none"\nlog_driver = "k8s-file"\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'events_logfile_path = "{d}/events.log"\ntmp_dir = "{d}/tmp"\n'
                    f'static_dir = "{d}/storage/libpod"\nvolume_path = "{d}/storage/volumes"\n'
                    'no_pivot_root = false\n')
        with open(f"{d}/conf/registries.conf", "w") as f:
            f.write("unqualified-search-registries = []\n")
        self.env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "HOME": d, "CONTAINERS_CONF": f"{d}/conf/containers.conf",
                    "CONTAINERS_STORAGE_CONF": f"{d}/conf/storage.conf",
                    "CONTAINERS_REGISTRIES_CONF": f"{d}/conf/registries.conf",
                    "PYCONTAIN_ALLOW_HOST": "1", "XDG_RUNTIME_DIR": f"{d}/run",
                    "TMPDIR": f"{d}/tmp"}  # conmon's console sockets (conmon-term.*) too

    def _jail(self) -> None:
        """The cgroup in every hierarchy, and the holder in it, its hierarchies mounted
        again inside its new cgroup and mount namespaces."""
        name = os.path.basename(self.dir)
        mounts, procs = [], []
        for point, kind, options, own in _hierarchies():
            path = os.path.join(point, own.lstrip("/"), name)
            os.mkdir(path)
            self.cgroups.append(path)
            if kind == "cgroup" and "cpuset" in options.split(","):  # v1: empty until copied
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    with open(f"{os.path.dirname(path)}/{knob}") as f:
                        value = f.read().strip()
                    with open(f"{path}/{knob}", "w") as f:
                        f.write(value)
            procs.append(f"{path}/cgroup.procs")
            if point == "/sys/fs/cgroup":  # cgroup v2 alone
                mounts.append(f"mount -t cgroup2 none {point}")
            elif kind == "cgroup2":
                mounts.append(f"mkdir -p {point} && mount -t cgroup2 none {point}")
            else:
                mounts.append(f"mkdir -p {point} && mount -t cgroup -o {options} cgroup {point}")
        if not any(p == "/sys/fs/cgroup" for p, *_ in _hierarchies()):
            mounts.insert(0, "mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup")
        self.procs = procs
        inner = " && ".join([*mounts, "echo ready", "exec sleep 1000000"])
        self.holder = subprocess.Popen(
            ["sh", "-c", self._enter_jail() + 'exec unshare --mount --cgroup '
             '--propagation private sh -c "$0"', inner],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=self.env)
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "ready":
            raise ProcessError("the podman jail's holder did not start",
                               hint="unshare(1) or mount(8) of a cgroup hierarchy failed")

    def _enter_jail(self) -> str:
        return "".join(f"echo $$ > {p} && " for p in self.procs)

    def command(self, *args: str) -> list[str]:
        """The argv that runs `podman ARGS` in the jail, with pycontain-oci as its runtime."""
        assert self.holder is not None
        return ["sh", "-c", self._enter_jail() + f"exec nsenter --target {self.holder.pid} "
                '--mount --cgroup -- "$0" "$@"', "podman", "--runtime", self.runtime, *args]

    def run(self, *args: str, timeout_s: float = 120, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        """`podman ARGS` in the jail; a ProcessError when it fails and `check`."""
        done = subprocess.run(self.command(*args), capture_output=True, text=True,
                              env=self.env, timeout=timeout_s, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise ProcessError(f"podman {' '.join(args)} exited {done.returncode}: "
                               f"{done.stderr.strip()[-600:]}")
        return done

    def import_rootfs(self, rootfs: str | None = None) -> str:
        """`podman import` of a root filesystem (default: pycontain's embedded one) as
        `IMAGE`; no registry is asked."""
        from pycontain.fs import rootfs as rootfs_module

        root = rootfs or str(rootfs_module.ensure())
        tarball = f"{self.dir}/rootfs.tar"
        subprocess.run(["tar", "-C", root, "-cf", tarball, "."], check=True)
        self.run("import", tarball, IMAGE)
        os.unlink(tarball)
        return IMAGE

    def pids(self) -> list[int]:
        """Every process in the jail's cgroup and below, the holder too."""
        found: set[int] = set()
        if not self.cgroups:
            return []
        for directory, _, _ in os.walk(self.cgroups[0]):
            try:
                with open(f"{directory}/cgroup.procs") as f:
                    found.update(int(p) for p in f.read().split())
            except FileNotFoundError:
                pass
        return sorted(found)

    def close(self) -> None:
        """Remove every container, kill every process left in the jail by pid, remove its
        cgroups depth first and its directory. Idempotent."""
        if self.holder is not None and self.holder.poll() is None:
            try:
                self.run("rm", "--all", "--force", "--time", "0", timeout_s=60, check=False)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while self.cgroups and (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        if self.holder is not None:
            self.holder.wait()
            if self.holder.stdout is not None:
                self.holder.stdout.close()
            self.holder = None
        for top in self.cgroups:
            for directory, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                for _ in range(100):  # rmdir is EBUSY until the killed ones are reaped
                    try:
                        os.rmdir(directory)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.05)
        self.cgroups = []
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Podman:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
