"""Lesson 08 on the real kernel: network namespaces, the bridge, NAT and published ports.

Every claim of the lesson: a fresh network namespace holds only `lo`, down; a bridged container
has eth0 with an address, a default route and a bridge port outside; two containers ping each
other through the bridge; a published port reaches a server in a container from another network
namespace (prerouting DNAT) and back; outbound traffic is masqueraded (the rules, and a server in
an "upstream" namespace seeing the host's address); unplugging the host end stops pings; clean-up
and `pycontain cleanup` leave no link, table or state, and ip_forward as it was; bad input is
refused before anything exists. Traffic goes only to namespaces these tests made.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import pycontain
from pycontain import lab, runtime, settings
from pycontain.checks import CheckFailed, fetch, lesson08
from pycontain.errors import SpecError, SyscallError
from pycontain.fs import rootfs
from pycontain.namespaces import net
from pycontain.network import bridge, nft, options

from .conftest import PYCONTAIN
from .test_cli import _wait_until_catching

pytest.importorskip("pyroute2", reason="lesson 08 needs pyroute2 (pip install pyroute2)")
pytestmark = [pytest.mark.root, pytest.mark.netns]
needs_nft = pytest.mark.skipif(shutil.which("nft") is None,
                               reason="the bridge network needs the nft tool (apt-get install "
                                      "nftables)")

# A TCP server: prints "ready", answers one connection with "<peer address> <what it got>".
SERVER = """import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(); print("ready", flush=True)
c, peer = s.accept(); c.sendall(f"{peer[0]} {c.recv(100).decode()}".encode()); c.close()
"""
# A TCP client: connects, sends "hello", prints the answer.
CLIENT = """import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20); c.sendall(b"hello")
print(c.recv(200).decode())
"""


def forward() -> str:
    return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def ours() -> list[str]:
    return [i for i in lab.leftovers() if i.split()[0] in ("link", "netstate", "nft", "netns")]


@pytest.fixture(autouse=True)
def nothing_left():
    before, others = forward(), set(ours())  # others: made by work beside these tests
    assert not {i for i in others if "pycontain-br0" in i or i.startswith(("netstate", "nft"))}
    yield
    assert not set(ours()) - others, f"this test left: {set(ours()) - others}"
    assert forward() == before


def start(scratch, argv, **options):
    box = pycontain.spawn(argv, **options)
    scratch.defer(lambda: (box.kill(), box.wait()), f"stop {argv[0]}")
    return box


def server(scratch, port, **options):
    box = start(scratch, [sys.executable, "-I", "-c", SERVER, str(port)], **options)
    assert box.process.stdout.readline().strip() == "ready"
    return box


def peer_namespace(scratch, veth, host_cidr, inside_cidr, argv=("sleep", "300")):
    """Another network namespace of ours (a container with network none) wired to the host."""
    box = start(scratch, list(argv), network="none")
    net.wire(box.pid, veth, host_cidr, inside_cidr)
    scratch.defer(lambda: net.unwire(veth), f"remove {veth}")
    return box


def test_a_fresh_network_namespace_has_only_a_down_loopback(scratch):
    box = start(scratch, ["sleep", "300"])
    assert box.spec.network is None and "net" in box.spec.namespaces
    [lo] = net.links(box.pid)
    assert (lo["name"], lo["up"], lo["addresses"]) == ("lo", False, [])
    net.in_netns(box.pid, ["up", "lo"])
    [lo] = net.links(box.pid)
    assert lo["up"] and lo["addresses"] == ["127.0.0.1/8"]
    assert "lo" in {link["name"] for link in net.links()}  # the host's is another one


def test_network_host_shares_the_hosts_namespace(scratch):
    result = pycontain.run(["cat", "/proc/self/net/dev"], network="host", timeout_s=30)
    assert "net" not in pycontain.Spec(["true"], network="host").namespaces
    assert {link["name"] for link in net.links()} <= set(result.stdout.replace(":", " ").split())


@needs_nft
def test_a_bridged_container_gets_eth0_an_address_a_route_and_a_bridge_port(scratch):
    box = start(scratch, ["sleep", "300"], network="bridge")
    inside = {link["name"]: link for link in net.links(box.pid)}
    assert set(inside) == {"lo", "eth0"} and inside["lo"]["up"] and inside["eth0"]["up"]
    assert inside["eth0"]["addresses"] == [f"{box.network.address}/24"]
    host = {link["name"]: link for link in net.links()}
    assert host[bridge.BRIDGE]["kind"] == "bridge"
    assert host[bridge.BRIDGE]["addresses"] == ["10.207.0.1/24"]
    assert host[box.network.veth]["master"] == bridge.BRIDGE
    assert forward() == "1" and "masquerade" in nft.rules()
    box.kill()
    box.wait()
    assert bridge.BRIDGE not in {link["name"] for link in net.links()}


@needs_nft
def test_two_containers_ping_each_other_through_the_bridge(scratch, embedded_rootfs):
    target = start(scratch, ["sleep", "300"], network="bridge", rootfs=embedded_rootfs)
    pinged = pycontain.run(["ping", "-c", "2", "-W", "10", target.network.address],
                           network="bridge", rootfs=embedded_rootfs, timeout_s=60)
    assert pinged.exit_code == 0, pinged.stdout + pinged.stderr
    assert "2 packets received" in pinged.stdout


@needs_nft
def test_a_published_port_reaches_a_server_inside_from_another_namespace(scratch):
    port = free_port()
    box = server(scratch, 8000, network="bridge", publish=[f"{port}:8000"])
    assert f"dport {port} dnat to {box.network.address}:8000" in nft.rules()
    client = peer_namespace(scratch, "pycontain-cli", "203.0.113.1/30", "203.0.113.2/30")
    answer = subprocess.run(["nsenter", f"--net=/proc/{client.pid}/ns/net", sys.executable,
                             "-I", "-c", CLIENT, "203.0.113.1", str(port)],
                            capture_output=True, text=True, timeout=60)
    # the server saw the client's own address: DNAT rewrote the destination only
    assert answer.stdout.split() == ["203.0.113.2", "hello"], answer.stderr
    assert box.wait(30).exit_code == 0


@needs_nft
def test_outbound_traffic_is_masqueraded_to_the_hosts_address(scratch):
    upstream = peer_namespace(scratch, "pycontain-wan", "198.51.100.1/30", "198.51.100.2/30",
                              [sys.executable, "-I", "-c", SERVER, "9000"])
    assert upstream.process.stdout.readline().strip() == "ready"
    answer = pycontain.run([sys.executable, "-I", "-c", CLIENT, "198.51.100.2", "9000"],
                           network="bridge", timeout_s=60)
    assert answer.stdout.split() == ["198.51.100.1", "hello"], answer.stderr  # not 10.207.0.x
    assert upstream.wait(30).exit_code == 0


@needs_nft
def test_unplugging_the_host_end_stops_pings_and_plugging_resumes_them(scratch, embedded_rootfs):
    target = start(scratch, ["sleep", "300"], network="bridge", rootfs=embedded_rootfs)

    def ping() -> int:
        return pycontain.run(["ping", "-c", "1", "-W", "2", target.network.address],
                             network="bridge", rootfs=embedded_rootfs, timeout_s=60).exit_code

    net.set_up(target.network.veth, False)
    eth0 = {link["name"]: link for link in net.links(target.pid)}["eth0"]
    assert eth0["up"] and eth0["state"] == "DOWN"  # still set up inside, but no carrier
    assert ping() != 0
    net.set_up(target.network.veth, True)
    assert ping() == 0


def arp_entry(address: str) -> str | None:
    """The MAC address the host's ARP cache holds for `address` (arp(7): /proc/net/arp)."""
    for line in Path("/proc/net/arp").read_text().splitlines()[1:]:
        ip, _, flags, mac, *_ = line.split()
        if ip == address and int(flags, 16) & 0x2:  # ATF_COM: complete
            return mac
    return None


@needs_nft
def test_an_address_handed_on_keeps_its_mac_so_the_hosts_arp_cache_stays_right(scratch):
    start(scratch, ["sleep", "300"], network="bridge")  # holds the bridge and its ARP cache

    def answer(box: runtime.Container) -> list[str]:  # one try, no retry
        with socket.create_connection((box.network.address, 8000), timeout=5) as connection:
            connection.sendall(b"hello")
            return connection.recv(200).decode().split()

    first = server(scratch, 8000, network="bridge")
    assert answer(first) == ["10.207.0.1", "hello"]
    assert first.wait(30).exit_code == 0
    cached = arp_entry(first.network.address)  # learnt by that exchange, still fresh
    second = server(scratch, 8000, network="bridge")
    assert second.network.address == first.network.address  # the next free one again
    eth0 = {link["name"]: link for link in net.links(second.pid)}["eth0"]
    assert eth0["mac"] == cached == bridge.mac_for(second.network.address)
    assert answer(second) == ["10.207.0.1", "hello"]  # the cache was right: no ARP needed
    # the bridge kept its own MAC while its ports came and went
    host = {link["name"]: link for link in net.links()}
    assert host[bridge.BRIDGE]["mac"] == bridge.mac_for("10.207.0.1") == "02:70:0a:cf:00:01"


@needs_nft
def test_cleanup_repairs_a_crashed_run(scratch):
    before = forward()
    attached = bridge.Attachment(settings.DEFAULT_SUBNET)
    box = start(scratch, ["sleep", "300"], on_created=attached.attach)
    assert forward() == "1" and bridge.records() and nft.table_exists()
    box.kill()
    box.wait()  # the process that wired it "crashed": nobody calls attached.release()
    assert {"link pycontain-br0", "netstate /run/pycontain-net",
            "nft table ip pycontain"} <= set(lab.leftovers())
    # what `pycontain cleanup` runs for these items (the whole sweep would also take what
    # tests running beside this one are using)
    assert "restored net.ipv4.ip_forward = " + before in bridge.teardown()
    assert not [i for i in ours() if i.startswith(("netstate", "nft", "link pycontain-br0"))]
    assert forward() == before


def test_the_default_start_does_not_import_pyroute2(cli):
    done = cli("run", "--", "true", env={"PYTHONPROFILEIMPORTTIME": "1",
                                          "PYCONTAIN_ALLOW_HOST": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "pyroute2" not in done.stderr
    assert "pycontain.namespaces.net" not in done.stderr


@pytest.mark.parametrize("options, parameter", [
    ({"network": "wifi"}, "network"),
    ({"network": "bridge", "publish": ["80"]}, "publish"),
    ({"network": "bridge", "publish": ["8080:80/sctp"]}, "publish"),
    ({"network": "bridge", "publish": ["70000:80"]}, "publish"),
    ({"publish": ["8080:80"]}, "publish"),
    ({"network": "none", "subnet": "10.1.0.0/24"}, "subnet"),
    ({"network": "bridge", "subnet": "10.1.0.1/24"}, "subnet"),
    ({"network": "bridge", "subnet": "8.8.8.0/24"}, "subnet"),
    ({"network": "host", "namespaces": {"net", "uts"}}, "network"),
])
def test_bad_network_options_are_refused_before_anything_exists(options, parameter):
    with pytest.raises(SpecError) as caught:
        pycontain.Spec(["true"], **options)
    assert caught.value.parameter == parameter


def test_a_link_name_taken_twice_fails_with_the_kernels_eexist_and_a_hint(scratch):
    first = peer_namespace(scratch, "pycontain-wan", "198.51.100.1/30", "198.51.100.2/30")
    with pytest.raises(SyscallError) as caught:
        net.wire(first.pid, "pycontain-wan", "198.51.100.5/30", "198.51.100.6/30")
    assert (caught.value.call, caught.value.errno) == ("RTM_NEWLINK", errno.EEXIST)
    assert "lesson 08" in str(caught.value)
    assert {link["name"]: link for link in net.links()}["pycontain-wan"]["addresses"] == [
        "198.51.100.1/30"]  # the first one is untouched


def test_a_subnet_that_overlaps_a_route_of_the_host_is_refused(scratch):
    peer_namespace(scratch, "pycontain-wan", "198.51.100.1/30", "198.51.100.2/30")
    with pytest.raises(SpecError, match="198.51.100.0/30 via pycontain-wan") as caught:
        pycontain.Spec(["true"], network="bridge", subnet="198.51.100.0/24")
    assert caught.value.parameter == "subnet"


@needs_nft
def test_while_the_bridge_runs_another_subnet_is_refused():
    with pycontain.spawn(["sleep", "30"], network="bridge") as box:
        assert options.bridge_network() == box.network.subnet  # read from the kernel's routes
        with pytest.raises(SpecError, match="the subnet of the running bridge, 10.207.0.0/24"):
            pycontain.Spec(["true"], network="bridge", subnet="10.208.0.0/24")
        box.kill()
    assert options.bridge_network() is None  # the bridge went with its last container


def test_a_host_port_in_use_is_refused():
    with socket.socket() as listening:
        listening.bind(("0.0.0.0", 0))
        listening.listen()
        port = listening.getsockname()[1]
        with pytest.raises(SpecError, match=f"{port}/tcp"):
            pycontain.Spec(["true"], network="bridge", publish=[f"{port}:80"])


@pytest.mark.parametrize("args, says", [
    (["--network", "wifi"], "pycontain: --network must be one of none, bridge, host"),
    (["--network", "bridge", "-p", "8080"], "pycontain: -p must be HOST:CONTAINER"),
    (["-p", "8080:80"], "pycontain: -p 8080:80 needs --network bridge"),
])
def test_the_cli_refuses_bad_network_options_with_125(cli, args, says):
    done = cli("run", *args, "--", "true")
    assert done.returncode == 125 and says in done.stderr, done.stderr


@needs_nft
def test_the_cli_publishes_a_port(cli, scratch):
    port = free_port()
    done = cli("run", "--network", "bridge", "-p", f"{port}:80", "--", "sh", "-c",
               "ip -o link show eth0; ip -4 -o addr show eth0")  # the host's /sys: not there
    assert done.returncode == 0, done.stderr
    link, address = done.stdout.splitlines()
    assert "state UP" in link and " 10.207.0." in address


def test_the_ends_of_a_veth_name_each_other_by_index(scratch):
    box = peer_namespace(scratch, "pycontain-cli", "203.0.113.1/30", "203.0.113.2/30")
    inside = {link["name"]: link for link in net.links(box.pid)}
    outside = {link["name"]: link for link in net.links()}
    assert outside["pycontain-cli"]["peer"] == inside["eth0"]["index"]
    assert inside["eth0"]["addresses"] == ["203.0.113.2/30"] and inside["lo"]["up"]


WEB = ["sh", "-c", "mkdir -p /tmp/www && echo page > /tmp/www/index.html && "
                   "exec httpd -f -p 80 -h /tmp/www"]


@needs_nft
def test_the_check_passes_a_published_web_server(embedded_rootfs):
    def publish_page(practice, port):
        box = pycontain.spawn(WEB, rootfs=embedded_rootfs, network="bridge",
                              publish=[f"{port}:80"])
        practice.defer(lambda: (box.kill(), box.wait()), "stop it")
        return box

    assert "reached the server inside" in lesson08.check_published(publish_page, free_port())


@needs_nft
@pytest.mark.parametrize("mistake", ["nothing", "no publish", "no server", "never stopped"])
def test_the_check_fails_each_mistake(embedded_rootfs, mistake):
    def publish_page(practice, port):
        if mistake == "nothing":
            return None
        argv = ["sleep", "300"] if mistake == "no server" else WEB
        box = pycontain.spawn(argv, rootfs=embedded_rootfs, network="bridge",
                              publish=[] if mistake == "no publish" else [f"{port}:80"])
        if mistake != "never stopped":
            practice.defer(lambda: (box.kill(), box.wait()), "stop it")
        return box

    with pytest.raises(CheckFailed):
        lesson08.check_published(publish_page, free_port())


@needs_nft
def test_a_learner_function_that_raises_after_spawn_leaves_nothing(embedded_rootfs):
    """The issue-18 leak: the container, its veth and the bridge outlived the raise."""
    forwarding, links = nft.forwarding_baseline(), {link["name"] for link in net.links()}

    def publish_page(practice, port):
        pycontain.spawn(WEB, rootfs=embedded_rootfs, network="bridge", publish=[f"{port}:80"])
        raise RuntimeError("oops, after spawn")

    with pytest.raises(CheckFailed, match="raised RuntimeError.*the check stopped the 1 "):
        lesson08.check_published(publish_page, free_port())
    assert runtime.unwaited() == []  # stopped and waited for: its veth and cgroup released
    assert {link["name"] for link in net.links()} <= links  # no veth, no bridge of its own
    assert nft.forwarding_baseline() == forwarding


@needs_nft
def test_the_check_names_a_container_that_ended(embedded_rootfs):
    def publish_page(practice, port):  # the server is not in the foreground: the container ends
        box = pycontain.spawn(["true"], rootfs=embedded_rootfs, network="bridge",
                              publish=[f"{port}:80"])
        box.wait()
        return box

    with pytest.raises(CheckFailed, match="has ended already"):
        lesson08.check_published(publish_page, free_port())


@needs_nft
def test_the_stretch_wants_two_servers_that_name_their_ports(embedded_rootfs):
    def serve(port, text):
        return ["sh", "-c", f"mkdir -p /tmp/www && echo {text} > /tmp/www/index.html && "
                            "exec httpd -f -p 80 -h /tmp/www"]

    def publish_two(practice, first, second, same=False):
        boxes = []
        for port in (first, second):
            box = pycontain.spawn(serve(port, "same" if same else f"port {port}"),
                                  rootfs=embedded_rootfs, network="bridge",
                                  publish=[f"{port}:80"])
            practice.defer(lambda box=box: (box.kill(), box.wait()), "stop it")
            boxes.append(box)
        return tuple(boxes)

    assert "two servers" in lesson08.check_two_published(publish_two, free_port(), free_port())
    with pytest.raises(CheckFailed, match="should name its own port"):
        lesson08.check_two_published(lambda p, a, b: publish_two(p, a, b, same=True),
                                     free_port(), free_port())
    assert runtime.unwaited() == []


def readme_web_server() -> tuple[list[str], str]:
    """The README's web-server line: the command (shell words) and the URL its comment names."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("pycontain run") and "httpd" in x)
    command, _, comment = line.partition("  # ")
    return shlex.split(command), comment.rpartition(" ")[2]


@needs_nft
@pytest.mark.skipif(not rootfs.find_busybox(), reason="httpd is busybox's (apt-get install "
                                                      "busybox-static)")
def test_the_readme_web_server_serves_the_rootfs_page(embedded_rootfs):
    words, url = readme_web_server()
    assert words[:2] == ["pycontain", "run"] and url.startswith("http://")
    argv = [*PYCONTAIN, *[embedded_rootfs if w == "$(pycontain rootfs)" else w
                          for w in words[1:]]]
    if os.environ.get(settings.SUBNET_VARIABLE):  # the README speaks of the default subnet
        gateway = next(ipaddress.IPv4Network(os.environ[settings.SUBNET_VARIABLE]).hosts())
        url = url.replace("10.207.0.1", str(gateway))
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) as cli:
        try:
            page = fetch(url, timeout_s=30)
        finally:
            _wait_until_catching(cli.pid, signal.SIGINT)
            cli.send_signal(signal.SIGINT)  # Ctrl-C twice, as a user ends it
            assert "Ctrl-C again kills it" in cli.stderr.readline()
            cli.send_signal(signal.SIGINT)
            assert cli.wait(timeout=30) == 128 + signal.SIGKILL
    assert page == (Path(embedded_rootfs) / "var/www/index.html").read_text()
    assert "Hello from a pycontain container" in page
