"""Shaping on the real kernel (network.shaping): a rate on a container's veth really limits the
throughput measured between the container and the host's end of the bridge, egress (an IFB)
and ingress (a tbf on the veth); a rate without the bridge, or in a grammar tc does not speak,
is refused before anything exists; lesson 17's check names a wrong rate before it measures;
and nothing is left: no IFB, veth or bridge. Traffic goes only between the namespaces these
tests make and the bridge they make. Bounds are generous: accuracy is bench/'s business.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time

import pytest

import pycontain
from pycontain import lab, runtime, workloads
from pycontain.checks import CheckFailed, lesson17
from pycontain.errors import SpecError
from pycontain.namespaces import net
from pycontain.network import shaping
from pycontain.observe import throughput
from pycontain.settings import BRIDGE, IFB_PREFIX

pytest.importorskip("pyroute2", reason="shaping needs pyroute2 (pip install pyroute2)")
pytestmark = [pytest.mark.root, pytest.mark.netns,
              pytest.mark.skipif(shutil.which("nft") is None, reason="the bridge needs nft")]

SECONDS = 2.0


def _ifbs() -> list[str]:
    return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(IFB_PREFIX))


def _egress_mbit(**rates: str) -> float:
    """Mbit/s a container sends to the host's end of the bridge, with `rates` on its veth,
    counted by the host's receiver from its first byte to its last (workloads.receive)."""
    def start(argv: list[str]) -> pycontain.Container:
        box = pycontain.spawn(argv, network="bridge", **rates)
        assert box.network is not None and box.network.veth
        if rates:
            assert box.network.ifb in _ifbs()
            assert "tbf" in shaping.show(box.network.ifb)
            assert "mirred" in shaping.show(box.network.veth)
        return box

    return throughput.measure(seconds=SECONDS, start=start).mbit


def _listening(pid: int, port: int) -> bool:
    """Whether a socket in the network namespace of `pid` listens on TCP `port` (proc(5):
    /proc/PID/net/tcp is that namespace's table; state 0A is LISTEN)."""
    with open(f"/proc/{pid}/net/tcp") as f:
        return any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A"
                   for row in f.readlines()[1:])


def test_an_egress_rate_limits_what_the_container_sends_and_its_ifb_goes_with_it():
    free = _egress_mbit()
    shaped = _egress_mbit(egress_rate="5mbit")
    assert 2.5 < shaped < 7.5, f"{shaped:.1f} Mbit/s under a 5mbit egress rate"
    assert free > 4 * shaped, f"{free:.0f} Mbit/s unshaped, {shaped:.1f} shaped"
    assert _ifbs() == [] and not os.path.exists(f"/sys/class/net/{BRIDGE}")
    assert not [line for line in lab.leftovers() if "link" in line]


def test_on_end_reads_the_veth_after_the_receiver_counted_everything():
    """Lesson 17 reads the veth's counter at this moment: it holds every byte the receiver
    got, plus headers, and the veth is still there (the container goes after it)."""
    seen: list[tuple[str, int]] = []

    def on_end(box: pycontain.Container) -> None:
        assert box.network is not None
        with open(f"/sys/class/net/{box.network.veth}/statistics/rx_bytes") as f:
            seen.append((box.network.veth, int(f.read())))

    run = throughput.measure("20mbit", seconds=1.0, on_end=on_end)
    [(veth, on_the_veth)] = seen
    assert on_the_veth > run.total_bytes > 0
    assert not os.path.exists(f"/sys/class/net/{veth}")  # gone with the container, after


def test_an_ingress_rate_limits_what_the_container_receives():
    box = pycontain.spawn(workloads.receive_argv(5201, 0.1, 30), network="bridge",
                          ingress_rate="5mbit")
    try:
        assert box.network is not None and box.network.ifb is None
        assert "tbf" in shaping.show(box.network.veth)
        deadline = time.monotonic() + 30
        while not _listening(box.pid, 5201):  # its server counts from its own first byte
            assert box.running and time.monotonic() < deadline, "the server never listened"
            time.sleep(0.05)
        workloads.send(box.network.address, 5201, SECONDS, 256 << 20, out=io.StringIO())
        result = box.wait(timeout_s=60)
    finally:
        if box.running:
            box.kill()
            box.wait()
    got, took_s = workloads.received(result.stdout)
    mbit = got * 8 / took_s / 1e6
    assert 2.0 < mbit < 7.5, f"{mbit:.1f} Mbit/s under a 5mbit ingress rate"
    assert not os.path.exists(f"/sys/class/net/{BRIDGE}")


@pytest.mark.parametrize(("options_", "parameter"), [
    ({"egress_rate": "5mbit"}, "egress_rate"),
    ({"network": "bridge", "ingress_rate": "10mb"}, "ingress_rate"),
    ({"network": "bridge", "egress_rate": "1bit"}, "egress_rate"),
])
def test_bad_rates_are_refused_before_anything_exists(options_, parameter):
    with pytest.raises(SpecError) as refused:
        pycontain.spawn(["true"], **options_)
    assert refused.value.parameter == parameter
    assert _ifbs() == [] and not os.path.exists(f"/sys/class/net/{BRIDGE}")


def test_the_cli_refuses_a_rate_without_the_bridge_naming_the_flag(cli):
    done = cli("run", "--egress-rate", "5mbit", "--", "true")
    assert done.returncode == 125 and "--egress-rate" in done.stderr
    assert "--network bridge" in done.stderr


@pytest.mark.parametrize(("options_", "message"), [
    ({"network": "bridge", "ingress_rate": "10mbit"}, "what it receives"),
    ({"network": "bridge"}, "nothing shapes"),
    ({}, "not on the bridge"),
])
def test_the_check_names_the_mistake_before_it_measures(options_, message):
    with pytest.raises(CheckFailed, match=message):
        lesson17.check_egress_cap(lambda argv: pycontain.spawn(argv, **options_))
    assert _ifbs() == [] and not os.path.exists(f"/sys/class/net/{BRIDGE}")


def test_a_leaked_ifb_is_a_leftover_the_sweep_removes():
    name = f"{IFB_PREFIX}test"
    subprocess.run(["ip", "link", "add", name, "type", "ifb"], check=True)
    try:
        assert f"link {name}" in lab.leftovers()
        kind = next(k for k in lab.kinds() if k.name == "link")
        kind.remove(name)
        assert name not in _ifbs()
    finally:
        net.in_netns(None, ["delete", name])



def _raises_after_spawn(argv):
    pycontain.spawn(argv, network="bridge", egress_rate="10mbit")
    raise RuntimeError("oops")


@pytest.mark.parametrize(("capped", "message"), [
    (lambda argv: pycontain.run(["true"]), "still running"),  # a Result: it has ended
    (lambda argv: pycontain.spawn(["sleep", "5"], network="bridge", egress_rate="10mbit"),
     "start argv as given"),
    (lambda argv: pycontain.spawn(argv, network="bridge", egress_rate="10mbps"),
     "tc's mbps is megabytes per second"),
    (_raises_after_spawn, r"the check stopped the 1 container\(s\)"),
])
def test_the_check_names_more_wrong_turns_and_leaves_nothing(capped, message):
    with pytest.raises(CheckFailed, match=message):
        lesson17.check_egress_cap(capped)
    assert runtime.unwaited() == []
    assert _ifbs() == [] and not os.path.exists(f"/sys/class/net/{BRIDGE}")


def test_the_check_passes_a_10mbit_egress():
    passed = lesson17.check_egress_cap(
        lambda argv: pycontain.spawn(argv, network="bridge", egress_rate="10mbit"))
    assert "within 15% of 10 Mbit/s" in passed
    assert _ifbs() == [] and not os.path.exists(f"/sys/class/net/{BRIDGE}")


def test_the_stretch_wants_what_the_container_receives_held():
    passed = lesson17.check_ingress_cap(
        lambda argv: pycontain.spawn(argv, network="bridge", ingress_rate="5mbit"))
    assert "holds what the container receives" in passed
    for options_, message in (({"egress_rate": "5mbit"}, "paces what the container \\*sends\\*"),
                              ({"ingress_rate": "5mbps"}, "megabytes per second"),
                              ({}, "no rate was asked for what it receives")):
        with pytest.raises(CheckFailed, match=message):
            lesson17.check_ingress_cap(
                lambda argv, o=options_: pycontain.spawn(argv, network="bridge", **o))
    with pytest.raises(CheckFailed, match="not on the bridge"):
        lesson17.check_ingress_cap(lambda argv: pycontain.spawn(argv))
    assert runtime.unwaited() == []
    assert _ifbs() == [] and not os.path.exists(f"/sys/class/net/{BRIDGE}")
