"""Lesson 20 on the real kernel: what root inside a container may still do.

The default keeps Docker's capability set without CAP_MKNOD, in the bounding, permitted and
effective sets, none inheritable or ambient, and sets no_new_privs; each flag changes it as
Docker's does. Then the lesson's experiments: the probe of one action per capability, a file
capability and a setuid-root program in a layer under no_new_privs and without, a user
namespace's capabilities, and the check of the Try-it. Every reading is the kernel's own:
/proc/self/status inside, or a call that succeeds or fails with EPERM.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from pycontain import lab, runtime
from pycontain.checks import CheckFailed, lesson20
from pycontain.errors import SpecError
from pycontain.fs import rootfs
from pycontain.observe import widgets
from pycontain.security import capabilities
from pycontain.security.capabilities import DEFAULT

UID = 65534


def status_inside(cli, *flags: str) -> tuple[capabilities.Sets, str]:
    done = cli("run", *flags, "--", "cat", "/proc/self/status")
    assert done.returncode == 0, done.stderr
    no_new_privs = next(line.split()[1] for line in done.stdout.splitlines()
                        if line.startswith("NoNewPrivs:"))
    return capabilities.parse_status(done.stdout), no_new_privs


def test_the_default_keeps_dockers_set_without_mknod_and_no_new_privs(cli):
    sets, no_new_privs = status_inside(cli)
    assert sets.effective == sets.permitted == sets.bounding == DEFAULT
    assert sets.inheritable == sets.ambient == frozenset()
    assert no_new_privs == "1"


def test_root_inside_cannot_make_a_block_device(cli, embedded_rootfs):
    done = cli("run", "--rootfs", embedded_rootfs, "--", "mknod", "/tmp/sda", "b", "8", "0")
    assert done.returncode != 0 and "Operation not permitted" in done.stderr


def test_cap_drop_chown_makes_chown_fail_with_eperm(cli, embedded_rootfs):
    script = "touch /tmp/f && chown 1 /tmp/f && echo changed"
    kept = cli("run", "--rootfs", embedded_rootfs, "--", "sh", "-c", script)
    assert (kept.stdout, kept.returncode) == ("changed\n", 0), kept.stderr
    dropped = cli("run", "--cap-drop", "chown", "--rootfs", embedded_rootfs, "--",
                  "sh", "-c", script)
    assert dropped.returncode != 0 and "Operation not permitted" in dropped.stderr


def test_cap_add_sys_admin_allows_a_mount_inside(cli, embedded_rootfs):
    script = "mount -t tmpfs none /tmp && grep -c ' /tmp tmpfs ' /proc/mounts"
    refused = cli("run", "--rootfs", embedded_rootfs, "--", "sh", "-c", script)
    assert refused.returncode != 0 and "permission denied" in refused.stderr.lower()  # EPERM
    allowed = cli("run", "--cap-add", "SYS_ADMIN", "--rootfs", embedded_rootfs, "--",
                  "sh", "-c", script)
    assert allowed.returncode == 0 and int(allowed.stdout) >= 1, allowed.stderr
    sets, _ = status_inside(cli, "--cap-add", "CAP_SYS_ADMIN,mknod")
    assert sets.effective == sets.bounding == DEFAULT | {"CAP_SYS_ADMIN", "CAP_MKNOD"}


def test_cap_drop_all_leaves_root_with_nothing(cli):
    sets, _ = status_inside(cli, "--cap-drop", "ALL", "--cap-add", "kill")
    assert sets.effective == sets.permitted == sets.bounding == {"CAP_KILL"}


def test_privileged_keeps_every_capability_and_no_new_privs_off(cli):
    sets, no_new_privs = status_inside(cli, "--privileged")
    mine = capabilities.read()
    assert sets.bounding == mine.bounding and sets.effective == mine.effective
    assert no_new_privs == "0"


def test_no_new_privileges_false_turns_it_off_and_keeps_the_default_set(cli):
    sets, no_new_privs = status_inside(cli, "--security-opt", "no-new-privileges=false")
    assert no_new_privs == "0" and sets.bounding == DEFAULT


def test_a_user_namespace_run_as_root_keeps_the_default_set_after_its_uid_change(cli):
    """With --map-root, init changes uid to the mapped root (setresuid) before the sets are
    chosen: capset afterwards still works, with no keep-caps, since the new uid is root."""
    sets, no_new_privs = status_inside(cli, "--map-root", "200000", "--namespaces",
                                       "uts,pid,mnt")
    assert sets.effective == sets.permitted == sets.bounding == DEFAULT
    assert no_new_privs == "1"


def test_a_rootless_run_keeps_the_default_set(cli):
    done = cli("run", "--user-namespace", "--", "cat", "/proc/self/status", user=UID,
               env={**os.environ, "HOME": "/tmp"})
    assert done.returncode == 0, done.stderr
    sets = capabilities.parse_status(done.stdout)
    assert sets.effective == sets.permitted == sets.bounding == DEFAULT
    assert "NoNewPrivs:\t1" in done.stdout


@pytest.mark.parametrize(("args", "first"), [
    (["--cap-add", "MAKE_COFFEE"], "--cap-add must be capability names such as CHOWN or "
                                   "CAP_NET_RAW (any case), or ALL, got 'MAKE_COFFEE'"),
    (["--cap-drop", "chown,nope"], "--cap-drop must be capability names such as CHOWN"),
    (["--privileged", "--cap-add", "SYS_ADMIN"], "--cap-add must be left out with --privileged"),
    (["--security-opt", "apparmor=unconfined"], "--security-opt must be no-new-privileges, "
                                                "no-new-privileges=true, "
                                                "no-new-privileges=false, seccomp="),
])
def test_refusals_name_the_flag_and_create_nothing(cli, tmp_path, args, first):
    before = set(lab.leftovers())
    done = cli("run", *args, "--", "true", env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 125 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0].startswith(f"pycontain: {first}"), done.stderr
    assert not list(tmp_path.iterdir()) and not set(lab.leftovers()) - before


def test_help_says_what_a_container_may_do(cli):
    text = cli("run", "--help").stdout
    assert "--cap-add" in text and "--cap-drop" in text and "--privileged" in text
    assert "no-new-privileges=false" in text and "not MKNOD" in text


# --- lesson 20's experiments: the probe, file capabilities, setuid, the user namespace -------

ACTIONS = [cap for cap, _, _ in widgets.CAPABILITY_ACTIONS]
AS_NOBODY = ["su", "-s", "/bin/sh", "nobody", "-c"]
READ_CAPS = "grep CapEff /proc/self/status; /opt/raw/busybox grep CapEff /proc/self/status"


def test_the_probe_refuses_every_action_without_capabilities(embedded_rootfs):
    probe = widgets.probe_capabilities([], rootfs=embedded_rootfs)
    assert probe.kept == frozenset() and probe.refused() == set(ACTIONS)
    assert all(error for _, _, error in probe.rows)


@pytest.mark.parametrize("capability", ACTIONS)
def test_each_probe_action_needs_its_own_capability_and_no_other(embedded_rootfs, capability):
    probe = widgets.probe_capabilities([capability], rootfs=embedded_rootfs)
    assert probe.kept == {capability}  # the kernel's CapEff, read inside
    assert probe.refused() == set(ACTIONS) - {capability}


def test_the_probe_with_every_capability_refuses_nothing(embedded_rootfs):
    assert widgets.probe_capabilities(None, rootfs=embedded_rootfs).refused() == set()


def test_a_misspelt_capability_names_the_nearest_and_creates_nothing(embedded_rootfs):
    before = set(lab.leftovers())
    with pytest.raises(SpecError) as caught:
        runtime.run(["true"], rootfs=embedded_rootfs, capabilities=["CAP_SYS_ADMINN"])
    assert caught.value.parameter == "capabilities"
    assert "did you mean CAP_SYS_ADMIN?" in (caught.value.hint or "")
    assert set(lab.leftovers()) == before


@pytest.fixture
def layer(tmp_path, embedded_rootfs):
    """A layer with busybox carrying cap_net_raw+ep and a setuid-root coreutils id."""
    def copy_in(host_path: str, inside: str) -> str:
        target = tmp_path / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(host_path, target)
        return str(target)

    capabilities.set_file_capability(copy_in(f"{embedded_rootfs}/bin/busybox",
                                             "/opt/raw/busybox"), ["CAP_NET_RAW"])
    suid = copy_in("/usr/bin/id", "/opt/suid/id")
    for library in rootfs.shared_libraries("/usr/bin/id"):
        copy_in(library, library)
    os.chmod(suid, 0o4755)
    return str(tmp_path)


def as_nobody(rootfs_dir: str, layer_dir: str, script: str, **options) -> runtime.Result:
    return runtime.run([*AS_NOBODY, script], rootfs=rootfs_dir, overlay=True,
                       layers=[layer_dir], **options)


def effective(result: runtime.Result) -> list[frozenset[str]]:
    return [capabilities.names(int(line.split()[1], 16))
            for line in result.stdout.splitlines() if line.startswith("CapEff:")]


def test_a_file_capability_is_gained_at_execve_and_not_under_no_new_privs(embedded_rootfs,
                                                                        layer):
    gained = as_nobody(embedded_rootfs, layer, READ_CAPS, capabilities=DEFAULT)
    assert effective(gained) == [set(), {"CAP_NET_RAW"}], gained.stderr
    stopped = as_nobody(embedded_rootfs, layer, READ_CAPS, capabilities=DEFAULT,
                        no_new_privs=True)
    assert effective(stopped) == [set(), set()], stopped.stderr


def test_a_file_capability_outside_the_bounding_set_fails_the_execve(embedded_rootfs, layer):
    """`+ep` on a capability the bounding set lacks: capabilities(7), "Safety checking for
    capability-dumb binaries": execve fails with EPERM rather than run the program without."""
    bounded = as_nobody(embedded_rootfs, layer, READ_CAPS,
                        capabilities=DEFAULT - {"CAP_NET_RAW"})
    assert effective(bounded) == [set()]
    assert "/opt/raw/busybox: Operation not permitted" in bounded.stderr


def test_a_setuid_root_program_elevates_only_without_no_new_privs(embedded_rootfs, layer):
    elevated = as_nobody(embedded_rootfs, layer, "/opt/suid/id", capabilities=DEFAULT)
    assert elevated.stdout.startswith("uid=65534") and "euid=0(root)" in elevated.stdout
    held = as_nobody(embedded_rootfs, layer, "/opt/suid/id", capabilities=DEFAULT,
                     no_new_privs=True)
    assert held.stdout.startswith("uid=65534") and "euid=" not in held.stdout, held.stderr


def test_every_capability_in_a_user_namespace_cannot_chown_a_host_file():
    """On a file the container can reach (pytest's tmp_path is 0700 up the tree)."""
    with tempfile.TemporaryDirectory(prefix="pycontain-userns-") as directory:
        os.chmod(directory, 0o755)
        host_file = Path(directory) / "owned-by-root"
        host_file.write_text("the host's\n")
        done = runtime.run(["sh", "-c", f"grep CapEff /proc/self/status; chown 0 {host_file}"],
                           user_namespace=True, namespaces={"uts", "pid", "mnt"})
        owner = os.stat(host_file).st_uid
    assert effective(done) == [set(capabilities.known())]
    assert done.status != 0 and "Operation not permitted" in done.stderr and owner == 0


# --- the checks of lesson 20 ----------------------------------------------------------------

SERVER = ["CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETUID"]


@pytest.mark.parametrize("options", [
    {"capabilities": SERVER, "no_new_privs": True},
    {"capabilities": "net_bind_service,setuid,setgid", "no_new_privs": True},  # as Spec takes
])
def test_the_check_passes_a_server_that_keeps_only_what_it_needs(options):
    passed = lesson20.check_web_server_options(lambda: options)
    print("\n" + passed)
    assert "ran as nobody (Uid 65534)" in passed
    assert "without CAP_SETGID, 'httpd: setgroups: Operation not permitted'" in passed


@pytest.mark.parametrize(("returned", "says"), [
    (None, "returned None; return a dict of keyword options for pycontain.run"),
    ({}, "with no capabilities= the container keeps every capability"),
    ({"capabilities": "ALL", "no_new_privs": True}, "ALL keeps every capability"),
    # the lesson's own one-capability server: it binds, then cannot give up its groups
    ({"capabilities": ["CAP_NET_BIND_SERVICE"], "no_new_privs": True},
     "then could not become nobody: 'httpd: setgroups: Operation not permitted'. That is "
     "setgroups(2)"),
    ({"capabilities": ["CAP_NET_BIND_SERVICE", "CAP_SETGID"]},
     "could not become nobody: 'httpd: setuid: Operation not permitted'. That is setuid(2)"),
    ({"capabilities": ["CAP_SETGID", "CAP_SETUID"]},
     "httpd could not listen on port 80 (httpd: bind: Permission denied)"),
    ({"capabilities": []}, "could not listen on port 80"),
    # Docker's set, and the chown section's set: it works, with what it does not need
    ({"capabilities": sorted(DEFAULT), "no_new_privs": True},
     "still listens on port 80 as nobody without CAP_AUDIT_WRITE (and 9 more of the 13"),
    ({"capabilities": sorted(DEFAULT - {"CAP_CHOWN"}), "no_new_privs": True},
     "without CAP_AUDIT_WRITE (and 8 more of the 12"),
    ({"capabilities": [*SERVER, "CAP_CHOWN"], "no_new_privs": True},
     "still listens on port 80 as nobody without CAP_CHOWN:"),
    ({"capabilities": SERVER}, "but NoNewPrivs is 0"),
    ({"capabilities": ["KILL"], "network": "host"}, "return only capabilities and "
                                                    "no_new_privs, not network"),
    ({"capabilities": ["NET_BIND_SERVIC"]}, "did you mean CAP_NET_BIND_SERVICE?"),
])
def test_the_check_names_the_wrong_turn_without_the_answer(returned, says):
    with pytest.raises(CheckFailed) as caught:
        lesson20.check_web_server_options(lambda: returned)
    assert says in str(caught.value)
    assert "CAP_SETUID" not in str(caught.value) and "CAP_SETGID" not in str(caught.value) \
        or "CAP_SETGID" in str(returned)  # what it needs for nobody, never named
    assert runtime.unwaited() == []


def least_by_search(argv):
    """The stretch's answer: take capabilities away one at a time, keeping each needed."""
    root = str(rootfs.ensure())
    needed = set(capabilities.read().permitted)
    for cap in sorted(needed):
        if runtime.run(argv, rootfs=root, capabilities=needed - {cap}).status == 0:
            needed -= {cap}
    return needed


def each_alone(argv):
    """A wrong turn: the capabilities that are enough alone."""
    root = str(rootfs.ensure())
    return {cap for cap in capabilities.read().permitted
            if runtime.run(argv, rootfs=root, capabilities=[cap]).status == 0}


def test_the_stretch_passes_a_search_and_proves_it_on_the_kernel():
    passed = lesson20.check_least(least_by_search)
    assert "needs CAP_CHOWN, CAP_FOWNER, CAP_SYS_CHROOT" in passed and "['true'] needs none" \
        in passed


@pytest.mark.parametrize(("least", "says"), [
    (lambda argv: None, "returned None: return a set of capability names (None, as "
                        "capabilities=, would keep every capability"),
    (lambda argv: "CHOWN", "return a set of capability names"),
    (each_alone, "no capability alone is enough for a command that needs several together"),
    (lambda argv: {"CAP_CHOWN"}, "'chmod: /tmp/f: Operation not permitted'; a capability it "
                                 "needs is missing"),
    (lambda argv: set(DEFAULT), "still exits 0 without CAP_AUDIT_WRITE"),
    (lambda argv: {"CAP_CHOWN", "CAP_FOWNER", "CAP_SYS_CHROOT"} if len(argv) > 1 else {"KILL"},
     "['true'] still exits 0 without CAP_KILL"),
    (lambda argv: {"MAKE_COFFEE"}, "returned ['MAKE_COFFEE']: `capabilities` must be"),
])
def test_the_stretch_names_the_wrong_turn(least, says):
    with pytest.raises(CheckFailed) as caught:
        lesson20.check_least(least)
    assert says in str(caught.value)


@pytest.mark.parametrize("check", [
    lambda started: lesson20.check_web_server_options(started),
    lambda started: lesson20.check_least(lambda argv: started()),
])
def test_a_learner_function_that_raises_leaves_no_container(check):
    """What the learner's function started is stopped and its cgroup removed: the lines
    `leftovers()` showed for it while it ran (others' work on this machine adds its own, told
    apart by the container's cgroup name) are gone."""
    from pycontain.lab import leftovers

    before, boxes, during = set(leftovers()), [], set()

    def started():
        boxes.append(runtime.spawn(["sleep", "60"], rootfs=str(rootfs.ensure()), overlay=True,
                                   pids_max=20))
        during.update(line for line in set(leftovers()) - before
                      if line.endswith(f"/{boxes[0].cgroup.name}"))
        raise RuntimeError("a mistake after spawn")

    with pytest.raises(CheckFailed, match="raised RuntimeError: a mistake after spawn"
                                          r".*stopped the 1 container\(s\)"):
        check(started)
    assert during, "the container made nothing leftovers() sees: the test proves nothing"
    assert not boxes[0].running and runtime.unwaited() == []
    assert boxes[0].cgroup.removed
    assert not during & set(leftovers())
    assert not any(os.path.exists(d) for d in boxes[0].cgroup.dirs.values())


def test_the_stretch_names_a_search_from_capabilities_this_process_lacks():
    """A wrong turn: starting from every capability the kernel knows, where this process
    lacks some (this host withholds a few from root): pycontain.run's own refusal names it."""
    lacking = set(capabilities.known()) - capabilities.read().permitted
    with pytest.raises(CheckFailed) as caught:
        lesson20.check_least(lambda argv: set(capabilities.known()))
    says = "capabilities this process has (CapPrm" if lacking else "is not the smallest"
    assert says in str(caught.value)
