"""Lesson 02 on the real kernel: a UTS container has its own namespace and its own hostname."""

from __future__ import annotations

import socket
import subprocess

import pycontain
from pycontain import procfs


def test_container_gets_a_new_uts_namespace_and_its_own_hostname():
    host_name, host_ns = socket.gethostname(), procfs.namespace("self", "uts")
    with pycontain.spawn(["sleep", "30"], namespaces={"uts"}, hostname="box-1") as container:
        inside = container.namespaces()
        assert inside["uts"] != host_ns
        assert inside["net"] == procfs.namespace("self", "net")  # only uts was asked for
        seen = subprocess.run(["nsenter", f"--target={container.pid}", "--uts", "hostname"],
                              capture_output=True, text=True, check=True).stdout
        assert seen == "box-1\n"  # what the kernel reports inside that namespace
    result = pycontain.run(["hostname"], namespaces={"uts"}, hostname="box-1")
    assert (result.stdout, result.exit_code) == ("box-1\n", 0)
    assert socket.gethostname() == host_name


def test_cli_names_the_container_and_leaves_the_host_alone(cli):
    before = socket.gethostname()
    done = cli("run", "--namespaces", "uts", "--hostname", "demo", "--", "hostname")
    assert (done.stdout, done.stderr, done.returncode) == ("demo\n", "", 0)
    assert socket.gethostname() == before


def test_default_namespaces_are_all_new(embedded_rootfs):
    with pycontain.spawn(["sleep", "30"], rootfs=embedded_rootfs) as container:
        inside, outside = container.namespaces(), procfs.namespaces("self")
        for kind in pycontain.runtime.DEFAULT_NAMESPACES:
            assert inside[kind] != outside[kind], kind
        assert container.status().nspid[-1] == 1  # PID 1 inside its own PID namespace
