"""NAT for the bridge network: one nftables table, `ip pycontain`, and IPv4 forwarding (lesson 08).

Containers on `pycontain-br0` have private addresses. Going out, their packets leave with the
host's address instead (masquerade, source NAT in the postrouting hook); coming in, a published
port is rewritten to the container's address and port (DNAT in prerouting for packets from
other hosts and namespaces, and in output for the host's own connections). The host forwards
between the bridge and its other links only with `net.ipv4.ip_forward` = 1: pycontain turns it
on with the first bridged container, keeps the value it found in /run/pycontain-net/ip_forward
(so another process, or `pycontain cleanup`, can put it back), and restores it with the last.

The whole table is rendered from the attached containers' records and replaced in one
transaction (`nft -f -`: flush and refill are atomic), like Docker's nftables backend.

See also: nft(8), the nftables wiki "Performing Network Address Translation",
proc_sys_net(5) / Documentation/networking/ip-sysctl.rst (ip_forward).
Left out: filtering (the forward chain stays the host's), IPv6, hairpin NAT on the bridge,
published ports on 127.0.0.1 (Docker's userland proxy).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pycontain.errors import PreflightError, ProcessError
from pycontain.kernfs import write_once
from pycontain.settings import NET_STATE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

TABLE = "ip pycontain"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
SAVED = Path(NET_STATE) / "ip_forward"


def render(records: Iterable[dict[str, Any]], bridge: str) -> str:
    """The ruleset for the attached containers, as `nft -f` reads it.

    >>> print(render([{"address": "10.207.0.2", "subnet": "10.207.0.0/24",
    ...                "publish": [[8080, 80, "tcp"]]}], "pycontain-br0"))
    ... # doctest: +NORMALIZE_WHITESPACE
    table ip pycontain {}
    flush table ip pycontain
    table ip pycontain {
      chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local tcp dport 8080 dnat to 10.207.0.2:80
      }
      chain output {
        type nat hook output priority -100; policy accept;
        fib daddr type local tcp dport 8080 dnat to 10.207.0.2:80
      }
      chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 10.207.0.0/24 oifname != "pycontain-br0" masquerade
      }
    }
    """
    records = list(records)
    dnat = [f"    fib daddr type local {proto} dport {host} dnat to {r['address']}:{inside}"
            for r in records for host, inside, proto in r["publish"]]
    subnets = sorted({r["subnet"] for r in records})
    masquerade = [f'    ip saddr {s} oifname != "{bridge}" masquerade' for s in subnets]
    return "\n".join([
        f"table {TABLE} {{}}",  # so that the flush below finds it the first time too
        f"flush table {TABLE}",
        f"table {TABLE} {{",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;", *dnat, "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;", *dnat, "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;", *masquerade, "  }",
        "}"])


#: how long one `nft` command may take, in seconds
TIMEOUT_S = 30


def require() -> None:
    """Refuse, before anything is created, to wire a bridge where the `nft` tool is missing."""
    if shutil.which("nft") is None:
        raise PreflightError("network='bridge' needs the nft tool, and it is not installed",
                             hint="NAT for the bridge is an nftables table; install it: "
                                  "apt-get install nftables (make lab does) (lesson 08)")


def _nft(*args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    require()
    try:
        return subprocess.run(["nft", *args], input=script, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ProcessError(f"nft {' '.join(args)} did not end within {TIMEOUT_S} s",
                           hint="another nft or iptables command may hold the ruleset; "
                                "run `nft list ruleset` to see whether nft answers at all "
                                "(lesson 08)") from None


def apply(records: Iterable[dict[str, Any]], bridge: str) -> None:
    """Replace the table's rules with those for `records`, in one transaction."""
    done = _nft("-f", "-", script=render(records, bridge))
    if done.returncode:
        raise ProcessError(f"nft -f - failed: {done.stderr.strip()}",
                           hint="the kernel refused the NAT table: an old kernel without "
                                "nf_tables, or a missing nft_nat/nft_masq module; "
                                "`nft list ruleset` shows whether nftables works here (lesson 08)")


def rules() -> str:
    """The table as the kernel holds it (`nft list table ip pycontain`); '' when absent."""
    done = _nft("list", "table", *TABLE.split())
    return done.stdout if done.returncode == 0 else ""


def table_exists() -> bool:
    return shutil.which("nft") is not None and bool(rules())


def remove() -> None:
    remove_table(f"table {TABLE}")


def leftover_tables() -> list[str]:
    """`table ip pycontain` while the kernel holds it, for `pycontain cleanup`."""
    return [f"table {TABLE}"] if table_exists() else []


def remove_table(table: str) -> None:
    """`nft delete table ip pycontain` for `table` = "table ip pycontain"."""
    _nft("delete", *table.split())


def forwarding_on() -> None:
    """Turn IPv4 forwarding on, keeping the value found (once) for `forwarding_restore`."""
    if not SAVED.exists():
        SAVED.parent.mkdir(mode=0o700, exist_ok=True)
        SAVED.write_text(IP_FORWARD.read_text())
    write_once(str(IP_FORWARD), "1\n")  # a kernel file: one write(2), no O_CREAT


def forwarding_baseline() -> str:
    """ip_forward as it was before pycontain turned it on: the saved value while pycontain holds
    it (a bridge is up, or a dead notebook left one), else the kernel's; what clean-up restores."""
    return (SAVED if SAVED.exists() else IP_FORWARD).read_text().strip()


def forwarding_restore() -> str | None:
    """Put ip_forward back to the saved value; return it (None: nothing was saved)."""
    if not SAVED.exists():
        return None
    value = SAVED.read_text().strip()
    write_once(str(IP_FORWARD), value + "\n")
    SAVED.unlink()
    return value
