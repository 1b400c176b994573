"""The options of `network=`, checked before anything exists (lesson 08).

`network` is none (a namespace with `lo` only), bridge (eth0 on pycontain-br0, with NAT and
published ports) or host (the host's namespace); `publish` ports and a `subnet` make sense only
with the bridge. A port already taken on the host, by a listener or by another container, and a
subnet that overlaps a route of the host are refused here, before a container is made.

See also: ip-route(8), /proc/net/route in proc(5).
"""

from __future__ import annotations

import ipaddress

from pycontain import settings
from pycontain.errors import SpecError
from pycontain.network.bridge import records
from pycontain.settings import BRIDGE, SUBNET_VARIABLE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection

MODES = ("none", "bridge", "host")


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


def validate_rates(mode: str, egress_rate: object, ingress_rate: object
                   ) -> tuple[int | None, int | None]:
    """`egress_rate` and `ingress_rate` in bits per second; only with the bridge, since they
    shape the container's veth (lesson 17)."""
    from pycontain.network.shaping import parse_rate

    rates = tuple(None if value is None else parse_rate(value, name)
                  for name, value in (("egress_rate", egress_rate),
                                      ("ingress_rate", ingress_rate)))
    if mode != "bridge" and rates != (None, None):
        name, given = (("egress_rate", egress_rate) if egress_rate is not None
                       else ("ingress_rate", ingress_rate))
        raise SpecError(name, "used only with network='bridge'", given,
                        needs=("network", "bridge"),
                        hint="bandwidth is shaped by tc on the container's veth, and only "
                             "network='bridge' gives it one; cgroups have no network limit "
                             "(lesson 17)")
    return rates[0], rates[1]


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
    return wanted, mode, ports, validate_subnet(subnet or settings.subnet())


def port_free(port: int, proto: str, same: list[tuple[int, int, str]]) -> None:
    """Refuse a host port that something listens on or that a container published already."""
    import socket

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


def bridge_network() -> ipaddress.IPv4Network | None:
    """The subnet of pycontain-br0: the route the kernel made for its address (read from
    /proc/net/route, no netlink helper process needed); None without the bridge."""
    return next((route for route, dev in _routes() if dev == BRIDGE and route.prefixlen), None)


def gateway() -> str:
    """The host's end of the bridge, where a container on it reaches the host (lesson 17):
    the first address of pycontain-br0's subnet, or of the default one that the first
    container will give it."""
    network = bridge_network() or ipaddress.IPv4Network(settings.subnet())
    return str(next(network.hosts()))
