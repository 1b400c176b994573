"""The bridge network: containers wired to `pycontain-br0`, one veth each (lesson 08).

The first container on the bridge creates it (with the subnet's first address), turns on IPv4
forwarding and writes the nft table; each container gets a veth pair whose host end
`pycontain-xxxxx` is a bridge port and whose other end is born inside its network namespace as
`eth0`, with the next free address, a MAC address made from it (`mac_for`) and a default route
via the bridge; the last one to go takes
the bridge, the table and ip_forward back. Which containers are attached is kept in
/run/pycontain-net (one JSON record each, under flock(2)), so that separate `pycontain run`
processes share the bridge and `pycontain cleanup` can repair a crashed run.

Docker's default `bridge` network (docker0, 172.17.0.0/16) and the CNI `bridge` plugin do the
same. See also: bridge(8), veth(4), ip-link(8), nft(8).
Left out: IPAM beyond "next free address", several bridges, IPv6.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from pathlib import Path

from pycontain.errors import SpecError
from pycontain.namespaces.net import in_netns
from pycontain.settings import BRIDGE, NET_STATE, PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from typing import Any

STATE = Path(NET_STATE)  # one JSON record per attached container, ip_forward, lock


def _exists(link: str) -> bool:
    """Whether the host's network namespace has `link` (sysfs lists it: no netlink needed)."""
    return os.path.exists(f"/sys/class/net/{link}")


def records() -> list[dict[str, Any]]:
    """The containers attached to the bridge, one record each (a crashed run's included)."""
    return [json.loads(p.read_text()) for p in sorted(STATE.glob(f"{PREFIX}*.json"))]


def mac_for(address: str) -> str:
    """The MAC address of a container's eth0 or the bridge, made from its IPv4 address (02:70
    then the address's four bytes: 10.207.0.2 is 02:70:0a:cf:00:02), as Docker makes its
    02:42:... ones. An ARP cache keeps an address's MAC for up to 45 s after the last answer
    (arp(7), base_reachable_time): when a container ends and the next one gets its address, a
    random MAC would leave the host sending to the old one, unanswered, for that long. A bridge
    without a MAC of its own takes the lowest of its ports', which changes as they come and go,
    under the containers' caches."""
    return "02:70:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(address).packed)


class _Locked:
    """flock(2) on the state directory's lock file: two `pycontain run` never pick the same
    address. The last container removes the directory, lock file and all, while it holds the
    lock; whoever was waiting then holds a lock on a file that is gone, sees that its file is
    not the one at the path any more, and locks again (so no record is ever written into a
    directory that was just removed)."""

    def __enter__(self) -> None:
        import fcntl

        while True:
            STATE.mkdir(mode=0o700, exist_ok=True)
            try:
                self.fd = os.open(STATE / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:  # the directory went between the two lines
                continue
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                if os.stat(STATE / "lock").st_ino == os.fstat(self.fd).st_ino:
                    return
            except FileNotFoundError:
                pass
            os.close(self.fd)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


class Attachment:
    """One container's place on the bridge: its veth, address and published ports.

    `attach(pid)` runs at the "created" sync point (runtime's on_created chain); `release()`
    runs when the container has ended, and takes the bridge, the nft table and ip_forward back
    with the last container."""

    def __init__(self, subnet: str, publish: Collection[tuple[int, int, str]] = (), *,
                 egress_rate: int | None = None, ingress_rate: int | None = None) -> None:
        self.subnet = ipaddress.IPv4Network(subnet)
        self.publish = [list(p) for p in publish]
        # bits per second, shaped on the veth (network.shaping, lesson 17)
        self.rates = (egress_rate, ingress_rate)
        self.ifb: str | None = None  # the IFB that shapes egress
        self.veth: str | None = None
        self.address: str | None = None  # the container's, without the prefix length

    def __repr__(self) -> str:
        return f"<Attachment {self.veth} {self.address} publish={self.publish}>"

    def attach(self, pid: int) -> None:
        with _Locked():
            try:
                self._attach(pid)
            except BaseException:
                self._detach()
                raise

    def _attach(self, pid: int) -> None:
        from pycontain.network import nft

        gateway = str(next(self.subnet.hosts()))
        for stale in [r for r in records() if not _exists(r["veth"])]:  # died with its netns
            (STATE / f"{stale['veth']}.json").unlink(missing_ok=True)
        used = {r["address"] for r in records()} | {gateway}
        self.address = next((str(a) for a in self.subnet.hosts() if str(a) not in used), None)
        if self.address is None:
            raise SpecError("subnet", "a subnet with a free address", str(self.subnet))
        self.veth = f"{PREFIX}{secrets.token_hex(3)[:5]}"
        (STATE / f"{self.veth}.json").write_text(json.dumps(
            {"veth": self.veth, "pid": pid, "address": self.address,
             "subnet": str(self.subnet), "publish": self.publish}))
        first = [] if _exists(BRIDGE) else [  # the first container makes the bridge
            ["bridge", BRIDGE, f"{gateway}/{self.subnet.prefixlen}", mac_for(gateway)]]
        shaping: list[list[object]] = []
        if self.rates != (None, None):  # on the host's end, where the container cannot undo it
            from pycontain.network import shaping as tc

            self.ifb, shaping = tc.steps(self.veth, *self.rates)
        # One helper process does both sides: the veth's peer is born inside the container's
        # namespace as eth0 (never on the host), then the helper enters that namespace too.
        in_netns(None, *first, ["veth", self.veth, pid, mac_for(self.address)],
                 ["master", self.veth, BRIDGE], *shaping, ["enter", pid], ["up", "lo"],
                 ["address", "eth0", f"{self.address}/{self.subnet.prefixlen}"],
                 ["up", "eth0"], ["route", gateway])
        nft.forwarding_on()
        nft.apply(records(), BRIDGE)

    def release(self) -> None:
        """Remove the veth and the record; with the last container, the bridge, the nft table
        and the saved ip_forward too. Idempotent."""
        if self.veth is not None:
            with _Locked():
                self._detach()

    def _detach(self) -> None:
        if self.veth is None:
            return
        # the IFB is a link of the host's: it does not go with the veth (a missing one is no
        # error: ["delete", name] deletes what is there)
        gone = [["delete", link] for link in (self.ifb, self.veth)
                if link is not None and _exists(link)]  # the veth may have gone with the netns
        if gone:
            in_netns(None, *gone)
        self.ifb = None
        (STATE / f"{self.veth}.json").unlink(missing_ok=True)
        self.veth = None
        if not records():
            teardown()
        else:
            from pycontain.network import nft

            nft.apply(records(), BRIDGE)


def teardown() -> list[str]:
    """Remove the bridge and the nft table, restore ip_forward and drop the state: what the
    last container's release does, and `pycontain cleanup` after a crash. Returns what it did."""
    from pycontain.network import nft

    done = []
    if _exists(BRIDGE):  # its ports went with their containers' namespaces
        in_netns(None, ["delete", BRIDGE])
        done.append(f"removed link {BRIDGE}")
    if nft.table_exists():
        nft.remove()
        done.append(f"removed nft table {nft.TABLE}")
    restored = nft.forwarding_restore()
    if restored is not None:
        done.append(f"restored net.ipv4.ip_forward = {restored}")
    for path in STATE.glob("*"):
        path.unlink()
    if STATE.exists():
        STATE.rmdir()
    return done


def leftover_state() -> list[str]:
    """The state directory, when a run left it (it goes with the last container): for
    `pycontain cleanup`, which then removes the bridge and the nft table with it."""
    return [str(STATE)] if STATE.exists() else []


def remove_state(path: str) -> None:
    """`teardown()`: the bridge, the nft table, ip_forward as it was, and the state at `path`
    (always `STATE`: there is one bridge network)."""
    teardown()


def hook(attachment: Attachment, then: Callable[[int], None] | None) -> Callable[[int], None]:
    """The on_created hook: wire the container, then run `then` (cgroup placement, ...)."""

    def created(pid: int) -> None:
        attachment.attach(pid)
        if then is not None:
            then(pid)

    return created
