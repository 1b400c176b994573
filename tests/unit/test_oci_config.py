"""config.json -> Spec (pycontain.oci.config): each field translated, each unsupported one
refused by its JSON path before anything exists (lesson 24)."""

from __future__ import annotations

import json
import os

import pytest

from pycontain.errors import SpecError
from pycontain.oci import cli, config, lifecycle


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs" / "bin").mkdir(parents=True)
    os.symlink("busybox", tmp_path / "rootfs" / "bin" / "sh")
    return tmp_path


def minimal(**changes):
    raw = {"ociVersion": "1.0.2",
           "process": {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/",
                       "user": {"uid": 0, "gid": 0}},
           "root": {"path": "rootfs"},
           "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "uts", "ipc",
                                                          "network")]}}
    raw.update(changes)
    return raw


def refused(bundle, raw, match):
    with pytest.raises(SpecError) as caught:
        config.translate(raw, str(bundle))
    text = caught.value.worded(config.NAMES).replace("`", "")
    assert match in text, text
    return text


def test_a_minimal_config_becomes_a_spec(bundle):
    chosen = config.translate(minimal(hostname="box"), str(bundle))
    spec = chosen.spec
    assert spec.argv == ("sh",) and spec.hostname == "box"
    assert spec.namespaces == {"pid", "mnt", "uts", "ipc", "net"}
    assert spec.rootfs == str(bundle / "rootfs") and spec.env == {"PATH": "/bin"}
    assert spec.user == (0, 0)


def test_process_fields_translate(bundle):
    caps = ["CAP_KILL", "CAP_CHOWN"]
    raw = minimal()
    raw["process"].update(
        user={"uid": 1000, "gid": 1000, "additionalGids": [5, 6]}, noNewPrivileges=True,
        capabilities={"bounding": caps, "effective": [], "permitted": []},
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}])
    raw["root"]["readonly"] = True
    raw["linux"].update(maskedPaths=["/proc/kcore"], readonlyPaths=["/proc/sys"],
                        sysctl={"net.ipv4.ping_group_range": "0 0"})
    spec = config.translate(raw, str(bundle)).spec
    assert spec.user == (1000, 1000, 5, 6) and spec.no_new_privs and spec.read_only
    assert spec.capabilities == {"KILL", "CHOWN"} or spec.capabilities == set(caps)
    assert spec.rlimits == ((7, 512, 1024),)
    assert spec.masked_paths == ("/proc/kcore",) and spec.readonly_paths == ("/proc/sys",)
    assert spec.sysctl == {"net.ipv4.ping_group_range": "0 0"}


def test_resources_translate_to_the_limits_fields():
    options = {"capabilities": ["CAP_MKNOD", "CAP_KILL"]}
    limits = config._resources({
        "memory": {"limit": 32 << 20, "swap": 64 << 20}, "pids": {"limit": 20},
        "cpu": {"quota": 50000, "period": 100000, "shares": 512, "cpus": "0"},
        "devices": [{"allow": False, "access": "rwm"}]}, options)
    assert limits == {"memory_max": 32 << 20, "memory_swap_max": 32 << 20, "pids_max": 20,
                      "cpu_max": "50000 100000", "cpu_shares": 512, "cpuset_cpus": "0"}
    assert options["capabilities"] == ["CAP_KILL"]  # no device cgroup: no mknod either


def test_podman_style_mounts_become_volumes_and_the_cgroup_view(bundle, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"},
              {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/dev/shm", "type": "bind", "source": str(tmp_path),
               "options": ["bind"]},
              {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"},
              {"destination": "/etc/hosts", "type": "bind", "source": str(hosts),
               "options": ["bind", "ro"]}]
    assert config._mounts(mounts, {"pid"}) == {
        "volumes": [(str(hosts), "/etc/hosts", True)], "cgroup_view": True}


@pytest.mark.parametrize("changes, match", [
    ({"ociVersion": "2.0.0"}, "ociVersion must be a 1.x version"),
    ({"ociVersion": None}, "ociVersion must be"),
    ({"root": {"path": "../elsewhere"}}, "root.path must be a directory inside the bundle"),
    ({"mounts": [{"destination": "/x", "type": "nfs", "source": "a"}]},
     "mounts[0].type must be one of bind, proc"),
    ({"mounts": [{"destination": "/run", "type": "tmpfs", "source": "t"}]},
     "mounts[0].destination must be a bind mount"),
    ({"solaris": {"milestone": "x"}}, "solaris must be absent"),
    ({"process": {"args": ["sh"], "terminal": "yes"}}, "process.terminal must be true or false"),
    ({"process": {"args": ["sh"], "consoleSize": {"height": -1, "width": 80}}},
     "process.consoleSize must be"),
    ({"process": {"args": []}}, "process.args must be a non-empty list"),
    ({"process": {"args": ["sh"], "env": ["NOEQUALS"]}}, "process.env must be strings"),
    ({"process": {"args": ["sh"], "capabilities": {"bounding": ["CAP_KILL"],
                                                   "ambient": ["CAP_KILL"]}}},
     "process.capabilities.ambient must be empty"),
    ({"process": {"args": ["sh"], "capabilities": {"bounding": ["CAP_KILL"],
                                                   "effective": ["CAP_CHOWN"]}}},
     "process.capabilities.effective must be the bounding set"),
    ({"process": {"args": ["sh"], "selinuxLabel": "system_u:x"}},
     "process.selinuxLabel must be absent"),
    ({"hooks": {"createContainer": [{"path": "/bin/true"}]}},
     "hooks.createContainer must be absent"),
    ({"hooks": {"prestart": [{"path": "relative"}]}},
     "hooks.prestart[0].path must be an executable's absolute path"),
])
def test_what_pycontain_cannot_honour_is_refused_by_its_json_path(bundle, changes, match):
    refused(bundle, minimal(**changes), match)


@pytest.mark.parametrize("linux, match", [
    ({"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "bogus"}]},
     "linux.namespaces[2].type must be one of pid, network"),
    ({"namespaces": [{"type": "pid"}, {"type": "mount"},
                     {"type": "network", "path": "/proc/self/ns/uts"}]},
     "linux.namespaces[].path must be the path of a net namespace"),
    ({"namespaces": [{"type": "pid"}, {"type": "mount"},
                     {"type": "network", "path": "/etc/hostname"}]}, "no namespace at all"),
    ({"namespaces": [{"type": "pid"}, {"type": "mount"}], "resources": {
        "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}},
     "linux.resources.hugepageLimits must be absent"),
    ({"namespaces": [{"type": "pid"}, {"type": "mount"}], "intelRdt": {"closID": "x"}},
     "linux.intelRdt must be absent"),
    ({"namespaces": [{"type": "pid"}, {"type": "mount"}], "sysctl": {"vm.swappiness": "1"}},
     "linux.sysctl must be namespaced kernel parameters"),
    ({"namespaces": [{"type": "pid"}, {"type": "mount"}],
      "sysctl": {"net.ipv4.ip_forward": "1"}}, "set only with 'net' among the namespaces"),
    ({"namespaces": [{"type": "pid"}, {"type": "mount"}], "rootfsPropagation": "shared"},
     "linux.rootfsPropagation must be private"),
    ({"namespaces": [{"type": "mount"}]}, "a /proc mount with a pid namespace"),
])
def test_linux_fields_refused(bundle, linux, match):
    raw = minimal(linux=linux)
    if "a /proc mount" in match:
        raw["mounts"] = [{"destination": "/proc", "type": "proc", "source": "proc"}]
    refused(bundle, raw, match)


def test_a_bundle_without_config_or_with_broken_json_is_refused(tmp_path):
    with pytest.raises(SpecError, match="`--bundle` must be a directory holding a config.json"):
        config.load(str(tmp_path))
    (tmp_path / "config.json").write_text('{"ociVersion": "1.0.2",\n "process": }')
    with pytest.raises(SpecError, match="valid JSON, got 'line 2 column 13: Expecting value"):
        config.load(str(tmp_path))


@pytest.mark.parametrize("bad", ["", "a/b", "..", "x y", "é"])
def test_ids_outside_runc_s_characters_are_refused(bad):
    with pytest.raises(SpecError, match="`id` must be one or more of A-Z"):
        lifecycle.check_id(bad)
    assert lifecycle.check_id("web-1_a.b") == "web-1_a.b"


def test_the_command_line_reads_runc_s_grammar():
    given, command, options, rest = cli.parse(
        ["--root", "/r", "--log=/l", "--log-format", "json", "--systemd-cgroup", "create",
         "--bundle", "/b", "--pid-file=/p", "c1"])
    assert given == {"--root": "/r", "--log": "/l", "--log-format": "json",
                     "--systemd-cgroup": True}
    assert (command, options, rest) == ("create", {"bundle": "/b", "pid_file": "/p"}, ["c1"])
    assert cli.parse(["kill", "--all", "c1", "KILL"])[2:] == ({"all": True}, ["c1", "KILL"])
    assert cli.parse(["exec", "-e", "A=1", "c1", "ls", "-l"])[2:] == (
        {"envs": ["A=1"]}, ["c1", "ls", "-l"])
    with pytest.raises(SpecError, match="`--bogus` must be an option of `start`"):
        cli.parse(["start", "--bogus", "c1"])


def test_an_error_reaches_conmon_as_a_json_log_line(tmp_path, capsys):
    log = tmp_path / "log.json"
    cli.log_error({"--log": str(log), "--log-format": "json"}, "`id` must be ...")
    line = json.loads(log.read_text())
    assert line["level"] == "error" and line["msg"] == "`id` must be ..." and "time" in line
    assert "pycontain-oci: `id` must be" in capsys.readouterr().err


def test_features_names_what_config_reads():
    shown = lifecycle.features()
    assert shown["linux"]["namespaces"] == list(config.NAMESPACES)
    assert set(shown["hooks"]) == set(config.HOOKS)
    assert json.dumps(shown)  # JSON all the way
