"""The network namespace: a container's own links, addresses, routes and ports (lesson 08).

A new network namespace holds one link, `lo`, and it is DOWN: no address answers, not even
127.0.0.1. `network="none"` stops there (Docker brings `lo` up; pycontain keeps the start cheap
and leaves it down). `network="host"` shares the host's namespace. `network="bridge"` wires the
container as Docker's default network does: a veth pair whose host end `pycontain-xxxxx` is a
port of the bridge `pycontain-br0` (the first address of the subnet, 10.207.0.1/24 unless
PYCONTAIN_SUBNET or `subnet=` says otherwise) and whose other end is created inside, as `eth0`,
with the next free address and a default route via the bridge (`pycontain.bridge`); NAT and
published ports are nftables rules (`pycontain.nft`).

Netlink is spoken by pyroute2, imported only here and only when a container gets a network.
The calling process never enters a container's namespace (DESIGN, "The process model"): what
must be done inside runs in a short-lived fresh interpreter that setns(2)-es into the container's
namespace first, the way runc and containerd run CNI plugins as separate processes.

See also: network_namespaces(7), veth(4), ip-link(8), ip-netns(8), bridge(8), nft(8).
Left out: IPv6, several networks, DNS (/etc/resolv.conf), port ranges, userland proxies for
127.0.0.1 (docker-proxy).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

from pycontain import fresh_python
from pycontain.errors import SpecError, from_wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection
    from typing import Any

PREFIX = "pycontain-"
BRIDGE = "pycontain-br0"
MODES = ("none", "bridge", "host")
DEFAULT_SUBNET = "10.207.0.0/24"
SUBNET_VARIABLE = "PYCONTAIN_SUBNET"


# ---- checking the options, before anything exists ----------------------------------------------

def validate_mode(network: object) -> str:
    if network not in MODES:
        raise SpecError("network", "one of none, bridge, host", network,
                        hint="none: own namespace, lo only; bridge: eth0 on pycontain-br0 with "
                             "NAT; host: the host's network (lesson 08)")
    return str(network)


def parse_port(text: object) -> tuple[int, int, str]:
    """A published port: "8080:80", "8080:80/udp" or (8080, 80[, "tcp"]).

    >>> parse_port("8080:80"), parse_port((53, 53, "udp"))
    ((8080, 80, 'tcp'), (53, 53, 'udp'))
    """
    accepted = "HOST:CONTAINER[/tcp|udp] such as 8080:80, ports 1-65535"
    if isinstance(text, str):
        ports, _, proto = text.partition("/")
        fields: list[object] = [*ports.split(":"), proto or "tcp"]
    elif isinstance(text, (tuple, list)) and len(text) in (2, 3):
        fields = [*text, "tcp"][:3]
    else:
        raise SpecError("publish", accepted, text)
    if len(fields) != 3 or fields[2] not in ("tcp", "udp"):
        raise SpecError("publish", accepted, text)
    try:
        host, inside = int(str(fields[0])), int(str(fields[1]))
    except ValueError:
        raise SpecError("publish", accepted, text) from None
    if not (0 < host < 65536 and 0 < inside < 65536):
        raise SpecError("publish", accepted, text, hint="a port number is 1-65535 (lesson 08)")
    return host, inside, str(fields[2])


def _routes() -> list[tuple[ipaddress.IPv4Network, str]]:
    """The host's IPv4 routes, from /proc/net/route: (destination, device)."""
    found = []
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            dev, dest, _, _, _, _, _, mask = line.split()[:8]
            net = ipaddress.IPv4Network(
                (int.from_bytes(bytes.fromhex(dest), "little"),
                 bin(int.from_bytes(bytes.fromhex(mask), "little")).count("1")), strict=False)
            found.append((net, dev))
    return found


def validate_subnet(subnet: object) -> str:
    """A private IPv4 subnet that no route of the host uses yet (but our bridge's own)."""
    accepted = "a private IPv4 subnet of /16 to /29 such as 10.207.0.0/24"
    try:
        net = ipaddress.IPv4Network(str(subnet), strict=True)
    except ValueError:
        raise SpecError("subnet", accepted, subnet) from None
    if not net.is_private or not 16 <= net.prefixlen <= 29:
        raise SpecError("subnet", accepted, subnet)
    for route, dev in _routes():
        if route.prefixlen and dev != BRIDGE and route.overlaps(net):
            raise SpecError("subnet", "one that overlaps no route of the host", str(net),
                            hint=f"the host already routes {route} via {dev}: containers "
                                 f"could not reach it; pick another subnet with "
                                 f"{SUBNET_VARIABLE}= or subnet= (lesson 08)")
    bridged = bridge_network()
    if bridged is not None and bridged != net:
        raise SpecError("subnet", f"the subnet of the running bridge, {bridged}", str(net),
                        hint="every container on pycontain-br0 shares one subnet; end the "
                             "others first (lesson 08)")
    return str(net)


def validate(network: object, publish: Collection[object], subnet: object,
             chosen: frozenset[str], namespaces_given: bool
             ) -> tuple[frozenset[str], str, tuple[tuple[int, int, str], ...], str | None]:
    """Check `network`, `publish` and `subnet` for a Spec; return the namespace set to use."""
    mode = validate_mode("none" if network is None and "net" in chosen else
                         "host" if network is None else network)
    wanted = chosen - {"net"} if mode == "host" else chosen | {"net"}
    if namespaces_given and wanted != chosen:
        raise SpecError("network", f"{'without' if mode == 'host' else 'with'} 'net' among the "
                        "namespaces", mode,
                        needs=None if mode == "host" else ("namespaces", "net"),
                        hint="host shares the host's network namespace; "
                        "none and bridge make one (lesson 08)")
    if isinstance(publish, (str, bytes)):
        publish = [publish]
    ports = tuple(parse_port(p) for p in publish)
    if mode != "bridge" and (ports or subnet is not None):
        raise SpecError("publish" if ports else "subnet", "used only with network='bridge'",
                        list(publish) if ports else subnet, needs=("network", "bridge"),
                        hint="ports are published and subnets routed through the bridge "
                             "(lesson 08)")
    if mode != "bridge":
        return wanted, mode, (), None
    for host, _, proto in ports:
        port_free(host, proto, [p for p in ports if p[:1] == (host,) and p[2] == proto])
    return wanted, mode, ports, validate_subnet(subnet or os.environ.get(SUBNET_VARIABLE)
                                                or DEFAULT_SUBNET)


def port_free(port: int, proto: str, same: list[tuple[int, int, str]]) -> None:
    """Refuse a host port that something listens on or that a container published already."""
    import socket

    from pycontain.bridge import records

    taken = len(same) > 1 or any((port, proto) == (p[0], p[2]) for r in records()
                                 for p in map(tuple, r["publish"]))
    if not taken:
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                taken = True
    if taken:
        raise SpecError("publish", "a host port nothing else uses", f"{port}/{proto}",
                        hint="a process listens there or another container published it: "
                             "`ss -lntup` shows which; pick another port (lesson 08)")


# ---- speaking netlink, always from a helper process -------------------------------------------

def in_netns(pid: int | None, *steps: list[Any]) -> list[Any]:
    """Run netlink `steps` in a fresh process, inside the network namespace of `pid` (None: the
    host's); return their results. The caller's namespaces never change, and pyroute2 never
    loads here (in a notebook, its event loop would clash with the kernel's). Steps:
    ["links"], ["up", name], ["down", name], ["address", name, "10.207.0.2/24"],
    ["route", gateway], ["bridge", name, "10.207.0.1/24"], ["veth", name, peer_pid],
    ["master", name, bridge], ["delete", name], and ["enter", pid] to move on into the
    namespace of another process (one helper can wire both ends)."""
    if pid is not None:
        steps = (["enter", pid], *steps)
    # same_path: pyroute2 is found where this process finds it
    done = subprocess.run(fresh_python("from pycontain.namespaces.net import _helper;_helper()",
                                       json.dumps(steps), same_path=True),
                          capture_output=True, text=True, timeout=60)
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"the netlink helper failed: {done.stderr.strip()}") from None
    if "error" in answer:
        raise from_wire(answer["error"])
    return [r for step, r in zip(steps, answer["results"], strict=True) if step[0] != "enter"]


def links(pid: int | None = None) -> list[dict[str, Any]]:
    """The links of the network namespace of `pid` (None: the host's), as the kernel lists
    them: name, index, up (IFF_UP), state (operstate), kind, master (a bridge), peer (a veth's
    other end, by its index), IPv4 addresses."""
    return list(in_netns(pid, ["links"])[0])


def _links(ipr: Any) -> list[dict[str, Any]]:
    found = ipr.get_links()
    names = {link["index"]: link.get("ifname") for link in found}
    addresses: dict[int, list[str]] = {}
    for a in ipr.get_addr(family=2):
        addresses.setdefault(a["index"], []).append(f"{a.get('address')}/{a['prefixlen']}")
    result = []
    for link in found:
        info = link.get("linkinfo")
        result.append({"name": link.get("ifname"), "index": link["index"],
                       "up": bool(link["flags"] & 1), "state": link.get("operstate"),
                       "kind": info.get("kind") if info else None,
                       "master": names.get(link.get("master")),
                       "peer": link.get("link"),  # a veth's other end: its index over there
                       "addresses": addresses.get(link["index"], [])})
    return result


# the netlink message each step sends, to name it in errors (rtnetlink(7))
_MESSAGES = {"up": "RTM_NEWLINK", "down": "RTM_NEWLINK", "address": "RTM_NEWADDR",
             "route": "RTM_NEWROUTE", "bridge": "RTM_NEWLINK", "veth": "RTM_NEWLINK",
             "master": "RTM_NEWLINK", "delete": "RTM_DELLINK", "links": "RTM_GETLINK"}


def _step(ipr: Any, verb: str, *args: Any) -> Any:
    def index(name: str) -> int | None:
        found = ipr.link_lookup(ifname=name)
        return found[0] if found else None

    if verb == "links":
        return _links(ipr)
    if verb in ("up", "down"):
        ipr.link("set", index=index(args[0]), state=verb)
    elif verb == "address":
        address, prefix = args[1].split("/")
        ipr.addr("add", index=index(args[0]), address=address, prefixlen=int(prefix))
    elif verb == "route":
        ipr.route("add", dst="0.0.0.0/0", gateway=args[0])
    elif verb == "bridge":
        ipr.link("add", ifname=args[0], kind="bridge")
        _step(ipr, "address", *args)
        _step(ipr, "up", args[0])
    elif verb == "veth":  # the peer is born in the namespace of args[1], as eth0
        ipr.link("add", ifname=args[0], kind="veth", peer={"ifname": "eth0",
                                                           "net_ns_pid": args[1]})
    elif verb == "master":
        ipr.link("set", index=index(args[0]), master=index(args[1]), state="up")
    elif verb == "delete":
        if index(args[0]) is not None:
            ipr.link("del", index=index(args[0]))
    else:
        raise SpecError("step", "one of " + ", ".join(_MESSAGES), verb)
    return None


def _helper() -> None:
    """`in_netns`'s other half, in its own process: join namespaces, speak netlink there."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    from pycontain import syscalls
    from pycontain.errors import SyscallError, to_wire

    results: list[Any] = []
    try:
        ipr = None
        for verb, *args in json.loads(sys.argv[1]):
            if verb == "enter":  # this process only, and it runs one thread
                if ipr is not None:
                    ipr.close()
                    ipr = None
                fd = os.open(f"/proc/{int(args[0])}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                syscalls.setns(fd, syscalls.CloneFlag.CLONE_NEWNET)
                os.close(fd)
                results.append(None)
                continue
            ipr = ipr or IPRoute()  # a netlink socket belongs to the namespace it was made in
            try:
                results.append(_step(ipr, verb, *args))
            except NetlinkError as e:
                raise SyscallError(_MESSAGES.get(verb, verb), (verb, *args), e.code) from None
        print(json.dumps({"results": results}))
    except Exception as e:
        print(json.dumps({"error": to_wire(e)}))


def bridge_network() -> ipaddress.IPv4Network | None:
    """The subnet of pycontain-br0: the route the kernel made for its address (read from
    /proc/net/route, no netlink helper process needed); None without the bridge."""
    return next((route for route, dev in _routes() if dev == BRIDGE and route.prefixlen), None)


# ---- links between the host and a namespace ----------------------------------------------------

def wire(pid: int, veth: str, host_cidr: str, inside_cidr: str) -> str:
    """A veth pair from the host into the network namespace of `pid`: the host end `veth`
    (a `pycontain-` name) with `host_cidr`, the other end born inside as `eth0` with
    `inside_cidr`, both up, and `lo` up inside. `unwire(veth)` removes the pair."""
    if not veth.startswith(PREFIX) or len(veth) > 15:  # IFNAMSIZ: 15 bytes and the NUL
        raise SpecError("veth", "a name of at most 15 bytes starting with pycontain-", veth)
    for name, cidr in (("host_cidr", host_cidr), ("inside_cidr", inside_cidr)):
        try:
            ipaddress.IPv4Interface(cidr)
        except ValueError:
            raise SpecError(name, "an IPv4 address with its prefix, such as 198.51.100.1/30",
                            cidr) from None
    existed = os.path.exists(f"/sys/class/net/{veth}")  # then the kernel refuses: EEXIST
    try:
        in_netns(None, ["veth", veth, pid], ["address", veth, host_cidr], ["up", veth],
                 ["enter", pid], ["up", "lo"], ["address", "eth0", inside_cidr], ["up", "eth0"])
    except BaseException:
        if not existed:  # nothing half-made; and someone else's link stays
            unwire(veth)
        raise
    return veth


def unwire(veth: str) -> None:
    """Delete the veth pair `veth` (both ends); nothing when it is gone already."""
    in_netns(None, ["delete", veth])


def set_up(name: str, up: bool = True) -> None:
    """Set the host's link `name` up or down (`ip link set NAME up|down`): pull the cable.
    Only pycontain's own links: the host's eth0 down would cut the lab VM off."""
    if not name.startswith(PREFIX):
        raise SpecError("name", "a link pycontain made, named pycontain-…", name,
                        hint="the host's own links carry your way into the lab VM; pull a "
                             "container's cable: its veth, box.network.veth (lesson 08)")
    in_netns(None, ["up" if up else "down", name])
