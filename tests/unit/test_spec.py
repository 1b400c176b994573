"""A Spec rejects bad input in userspace, naming the parameter and the accepted form."""

from __future__ import annotations

import os

import pytest

from pycontain.errors import CommandNotFoundError, SpecError
from pycontain.runtime import DEFAULT_NAMESPACES, Spec


def test_defaults_create_every_supported_namespace_and_a_small_environment():
    spec = Spec(["true"])
    assert spec.namespaces == DEFAULT_NAMESPACES  # cgroup and time are opt-in
    assert spec.environment() == {"PATH": spec.environment()["PATH"], "HOME": "/root"}
    assert Spec(["true"], namespaces="uts", hostname="b").environment()["HOSTNAME"] == "b"


def test_namespaces_accept_a_comma_list_or_a_set():
    assert Spec(["true"], namespaces="uts, pid").namespaces == {"uts", "pid"}
    assert Spec(["true"], namespaces={"ipc"}).namespaces == {"ipc"}
    assert Spec(["true"], namespaces="").namespaces == set()


@pytest.mark.parametrize("argv", [[], "hostname", [1, 2], None])
def test_argv_must_be_a_list_of_strings(argv):
    with pytest.raises(SpecError, match="`argv` must be a non-empty list of strings"):
        Spec(argv)


def test_unknown_namespace_names_the_accepted_ones():
    with pytest.raises(SpecError) as info:
        Spec(["true"], namespaces={"uts", "utc"})
    assert str(info.value).startswith(
        "`namespaces` must be a subset of {cgroup, ipc, mnt, net, pid, time, user, uts}, got "
        "'utc'")
    assert "lesson 01" in str(info.value)


def test_all_eight_namespaces_are_supported():
    from pycontain.runtime import SUPPORTED_NAMESPACES

    assert SUPPORTED_NAMESPACES == {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}


@pytest.mark.parametrize("hostname", ["", "x" * 65, "é" * 33, "a\0b"])
def test_bad_hostnames(hostname):
    with pytest.raises(SpecError, match="`hostname` must be 1-64 bytes"):
        Spec(["true"], namespaces={"uts"}, hostname=hostname)


def test_longest_hostname_is_accepted():
    assert Spec(["true"], namespaces={"uts"}, hostname="x" * 64).hostname == "x" * 64


def test_hostname_needs_the_uts_namespace():
    with pytest.raises(SpecError, match="`hostname` must be set only with 'uts'"):
        Spec(["true"], namespaces={"pid"}, hostname="box")


def test_command_not_found_on_the_host_path():
    with pytest.raises(CommandNotFoundError, match="`command` must be a program"):
        Spec(["no-such-command-here"])


def test_rootfs_missing(tmp_path):
    with pytest.raises(SpecError, match="`rootfs` must be an existing directory"):
        Spec(["sh"], rootfs=tmp_path / "missing")


def test_rootfs_not_a_directory(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SpecError, match="`rootfs` must be a directory"):
        Spec(["sh"], rootfs=tmp_path / "file")


def test_rootfs_without_the_command(tmp_path):
    (tmp_path / "bin").mkdir()
    os.symlink("busybox", tmp_path / "bin" / "sh")  # an applet link: found without following it
    assert Spec(["sh"], rootfs=tmp_path).rootfs == str(tmp_path.resolve())
    with pytest.raises(CommandNotFoundError, match="inside the rootfs"):
        Spec(["ls"], rootfs=tmp_path)


def test_rootfs_needs_the_mnt_namespace(tmp_path):
    with pytest.raises(SpecError, match="`rootfs` must be used only with 'mnt'"):
        Spec(["sh"], namespaces={"uts"}, rootfs=tmp_path)


def test_the_wire_holds_every_key_init_reads_whatever_was_asked():
    from pycontain.testing import init_spec

    plain = Spec(["true"], namespaces="uts").to_wire()
    full = Spec(["true"], namespaces="uts,pid,mnt,time", hostname="box", init=True,
                time_offsets={"boottime": 60}, trace=True).to_wire()
    assert set(plain) == set(full) == set(init_spec())  # init reads them with [], never .get
    assert plain["trace"] is False and full["trace"] is True
    assert plain["overlay"] is None and plain["sync_before_exec"] is False


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_trace_must_be_a_bool(value):
    with pytest.raises(SpecError, match="`trace` must be True or False"):
        Spec(["true"], trace=value)
