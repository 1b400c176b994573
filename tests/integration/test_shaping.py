"""Shaping on the real kernel (network.shaping): a rate on a container's veth really limits the
throughput measured between the container and the host's end of the bridge, egress (an IFB)
and ingress (a tbf on the veth); a rate without the bridge, or in a grammar tc does not speak,
is refused before anything exists; and nothing is left: no IFB, veth or bridge. Traffic goes
only between the namespaces these tests make and the bridge they make. Bounds are generous:
accuracy is bench/'s business.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

import pycontain
from pycontain import lab, settings
from pycontain.errors import SpecError
from pycontain.namespaces import net
from pycontain.network import options, shaping
from pycontain.settings import BRIDGE, IFB_PREFIX

pytest.importorskip("pyroute2", reason="shaping needs pyroute2 (pip install pyroute2)")
pytestmark = [pytest.mark.root, pytest.mark.netns,
              pytest.mark.skipif(shutil.which("nft") is None, reason="the bridge needs nft")]

SECONDS = 2.0
# Inside the container: connect to the host's end, send for SECONDS at most, 256 MiB at most,
# then wait for the receiver to have it all (its close) before exiting: the container's end
# goes with its namespace, and so would what its send buffer (kept small) still holds.
SEND = """import socket, sys, time
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 17)
c.settimeout(30); c.connect((sys.argv[1], int(sys.argv[2])))
block, sent, end = b"x" * 65536, 0, time.monotonic() + float(sys.argv[3])
while time.monotonic() < end and sent < 256 << 20:
    sent += c.send(block)
c.shutdown(socket.SHUT_WR); c.recv(1); print(sent)
"""
# The container's server counts from its first byte to its last, as _count does on the host:
# the time a slow machine takes to start or tear down a container is not the rate.
RECEIVE = """import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(); print("ready", flush=True)
s.settimeout(20); c, _ = s.accept(); got, first, last = 0, 0.0, 0.0
while (chunk := c.recv(65536)):
    now = time.monotonic(); first = first or now; last, got = now, got + len(chunk)
print(got, last - first)
"""


def _ifbs() -> list[str]:
    return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(IFB_PREFIX))


def _gateway() -> str:
    """The bridge's first address, the host's end (of a bridge that runs, or will)."""
    network = options.bridge_network() or ipaddress.IPv4Network(settings.subnet())
    return str(next(network.hosts()))


def _count(server: socket.socket, got: list[float]) -> None:
    """Accept one connection, count its bytes; append (bytes, seconds from first to last)."""
    server.settimeout(30)
    conn, _ = server.accept()
    total, first, last = 0, 0.0, 0.0
    with conn:
        while chunk := conn.recv(1 << 16):
            now = time.monotonic()
            first = first or now
            last, total = now, total + len(chunk)
    got.extend([total, last - first])


def _egress_mbit(**rates: str) -> float:
    """Mbit/s a container sends to the host's end of the bridge, with `rates` on its veth."""
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen()
        port = server.getsockname()[1]
        got: list[float] = []
        box = pycontain.spawn([sys.executable, "-I", "-S", "-c", SEND, _gateway(), str(port),
                               str(SECONDS)], network="bridge", **rates)
        assert box.network is not None and box.network.veth
        if rates:
            assert box.network.ifb in _ifbs()
            assert "tbf" in shaping.show(box.network.ifb)
            assert "mirred" in shaping.show(box.network.veth)
        counter = threading.Thread(target=_count, args=(server, got))
        counter.start()
        result = box.wait(timeout_s=60)
        counter.join(60)
    assert result.status == 0, result.stderr
    return got[0] * 8 / got[1] / 1e6


def test_an_egress_rate_limits_what_the_container_sends_and_its_ifb_goes_with_it():
    free = _egress_mbit()
    shaped = _egress_mbit(egress_rate="5mbit")
    assert 2.5 < shaped < 7.5, f"{shaped:.1f} Mbit/s under a 5mbit egress rate"
    assert free > 4 * shaped, f"{free:.0f} Mbit/s unshaped, {shaped:.1f} shaped"
    assert _ifbs() == [] and not os.path.exists(f"/sys/class/net/{BRIDGE}")
    assert not [line for line in lab.leftovers() if "link" in line]


def test_an_ingress_rate_limits_what_the_container_receives():
    box = pycontain.spawn([sys.executable, "-I", "-S", "-c", RECEIVE, "5201"],
                          network="bridge", ingress_rate="5mbit")
    try:
        assert box.network is not None and box.network.ifb is None
        assert "tbf" in shaping.show(box.network.veth)
        address = box.network.address
        deadline = time.monotonic() + 30
        while True:  # until its server listens
            try:
                conn = socket.create_connection((address, 5201), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the container's server never listened"
                time.sleep(0.05)
        started, sent, block = time.monotonic(), 0, b"x" * 65536
        with conn:
            while time.monotonic() < started + SECONDS:
                sent += conn.send(block)
        result = box.wait(timeout_s=60)
    finally:
        if box.running:
            box.kill()
            box.wait()
    got, took_s = result.stdout.split()[-2:]
    mbit = int(got) * 8 / float(took_s) / 1e6
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

