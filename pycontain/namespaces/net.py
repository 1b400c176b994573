"""The network namespace: a container's own links, addresses, routes and ports (lesson 08).

A new network namespace holds one link, `lo`, and it is DOWN: no address answers, not even
127.0.0.1. `network="none"` stops there (Docker brings `lo` up; pycontain keeps the start cheap
and leaves it down). `network="host"` shares the host's namespace. `network="bridge"` wires the
container as Docker's default network does: a veth pair whose host end `pycontain-xxxxx` is a
port of the bridge `pycontain-br0` (the first address of the subnet, 10.207.0.1/24 unless
PYCONTAIN_SUBNET or `subnet=` says otherwise) and whose other end is created inside, as `eth0`,
with the next free address and a default route via the bridge (`pycontain.network.bridge`); NAT and
published ports are nftables rules (`pycontain.network.nft`).

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
import os

from pycontain import helper, syscalls
from pycontain.errors import SpecError, SyscallError
from pycontain.settings import PREFIX
from pycontain.syscalls import UmountFlag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



# ---- speaking netlink, always from a helper process -------------------------------------------

def in_netns(pid: int | None, *steps: list[Any]) -> list[Any]:
    """Run netlink `steps` in a fresh process, inside the network namespace of `pid` (None: the
    host's); return their results. The caller's namespaces never change, and pyroute2 never
    loads here (in a notebook, its event loop would clash with the kernel's). Steps:
    ["links"], ["up", name], ["down", name], ["address", name, "10.207.0.2/24"],
    ["route", gateway], ["bridge", name, "10.207.0.1/24", mac], ["veth", name, peer_pid] (or
    ["veth", name, peer_pid, peer_mac]: the MAC address eth0 is born with),
    ["master", name, bridge], ["delete", name], traffic control for a link's bandwidth
    (`network.shaping` makes these: ["tbf", name, bits_per_s, burst_bytes, latency],
    ["ifb", name], ["redirect", name, ifb]), and ["enter", pid] to move on into the namespace
    of another process (one helper can wire both ends)."""
    if pid is not None:
        steps = (["enter", pid], *steps)
    # same_path: pyroute2 is found where this process finds it
    results = helper.in_fresh_process(netlink, [list(s) for s in steps], timeout_s=60,
                                      same_path=True)
    return [r for step, r in zip(steps, results, strict=True) if step[0] != "enter"]


def links(pid: int | None = None) -> list[dict[str, Any]]:
    """The links of the network namespace of `pid` (None: the host's), as the kernel lists
    them: name, index, mac (its MAC address), up (IFF_UP), state (operstate), kind, master (a
    bridge), peer (a veth's other end, by its index), IPv4 addresses."""
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
                       "mac": link.get("address"), "up": bool(link["flags"] & 1),
                       "state": link.get("operstate"),
                       "kind": info.get("kind") if info else None,
                       "master": names.get(link.get("master")),
                       "peer": link.get("link"),  # a veth's other end: its index over there
                       "addresses": addresses.get(link["index"], [])})
    return result


# the netlink message each step sends, to name it in errors (rtnetlink(7))
_MESSAGES = {"up": "RTM_NEWLINK", "down": "RTM_NEWLINK", "address": "RTM_NEWADDR",
             "route": "RTM_NEWROUTE", "bridge": "RTM_NEWLINK", "veth": "RTM_NEWLINK",
             "master": "RTM_NEWLINK", "delete": "RTM_DELLINK", "links": "RTM_GETLINK",
             "tbf": "RTM_NEWQDISC", "ifb": "RTM_NEWLINK", "redirect": "RTM_NEWTFILTER"}


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
    elif verb == "bridge":  # its own MAC: else it takes its ports' lowest, changing with them
        ipr.link("add", ifname=args[0], kind="bridge", address=args[2])
        _step(ipr, "address", *args[:2])
        _step(ipr, "up", args[0])
    elif verb == "veth":  # the peer is born in the namespace of args[1], as eth0
        peer = {"ifname": "eth0", "net_ns_pid": args[1]}
        if len(args) > 2:
            peer["address"] = args[2]
        ipr.link("add", ifname=args[0], kind="veth", peer=peer)
    elif verb == "master":
        ipr.link("set", index=index(args[0]), master=index(args[1]), state="up")
    elif verb == "delete":
        if index(args[0]) is not None:
            ipr.link("del", index=index(args[0]))
    elif verb == "tbf":  # a token bucket as the link's root qdisc: what leaves it, paced
        ipr.tc("add", "tbf", index(args[0]), rate=f"{args[1]}bit", burst=args[2],
               latency=args[3])
    elif verb == "ifb":
        ipr.link("add", ifname=args[0], kind="ifb")
        _step(ipr, "up", args[0])
    elif verb == "redirect":  # what arrives on args[0] leaves through args[1] instead
        ipr.tc("add", "ingress", index(args[0]), "ffff:")
        # every packet (u32 key 0/0 at offset 0, any protocol: ETH_P_ALL), to the IFB's egress
        ipr.tc("add-filter", "u32", index(args[0]), parent="ffff:", protocol=0x0003, prio=1,
               keys=["0x0/0x0+0"], target=0x10000,
               action=[{"kind": "mirred", "direction": "egress", "action": "redirect",
                        "ifindex": index(args[1])}])
    else:
        raise SpecError("step", "one of " + ", ".join(_MESSAGES), verb)
    return None


def netlink(steps: list[list[Any]]) -> list[Any]:
    """`in_netns`'s other half, in its own process: join namespaces, speak netlink there."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    from pycontain import syscalls
    from pycontain.errors import SyscallError

    results: list[Any] = []
    ipr = None
    try:
        for verb, *args in steps:
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
    finally:
        if ipr is not None:
            ipr.close()
    return results


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


# ---- leftovers: what `pycontain cleanup` finds and removes -------------------------------------

#: where ip-netns(8) keeps named network namespaces: a bind mount of each namespace's file
NETNS_DIR = "/run/netns"
#: the host's links, one directory each (sysfs lists them: no netlink needed to find them)
LINKS_DIR = "/sys/class/net"


def _named(directory: str) -> list[str]:
    """The entries of `directory` that carry the pycontain- prefix, sorted (none if absent)."""
    try:
        return sorted(n for n in os.listdir(directory) if n.startswith(PREFIX))
    except FileNotFoundError:
        return []


def leftover_netns(directory: str = NETNS_DIR) -> list[str]:
    """Named network namespaces `pycontain-…` (`ip netns add`): their paths."""
    return [os.path.join(directory, name) for name in _named(directory)]


def remove_netns(path: str) -> None:
    """What `ip netns delete` does: detach the bind mount that keeps the namespace, unlink it.

    The bind mount is also a `pycontain-` mount, which `pycontain cleanup` detaches first; then
    umount2(2) says EINVAL (not a mount point) and only the file is left to unlink."""
    import errno

    try:
        syscalls.umount2(path, UmountFlag.MNT_DETACH)
    except SyscallError as e:
        if e.errno != errno.EINVAL:
            raise
    os.unlink(path)


def leftover_links(directory: str = LINKS_DIR) -> list[str]:
    """The host's links `pycontain-…`: veths of containers and the bridge."""
    return _named(directory)


def remove_link(name: str) -> None:
    """Delete the host's link `name` (a veth's peer goes with it)."""
    import subprocess

    subprocess.run(["ip", "link", "delete", name], check=True, capture_output=True)
