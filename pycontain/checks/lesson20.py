"""The checks of lesson 20, drop capabilities.

`check_web_server_options` takes the learner's `web_server_options()`: the Spec options of a
container whose root cannot chown a file but can listen on port 80. It runs lesson 20's probe
(`observe.widgets.probe_capabilities`) with those options, as root in a container with its
own network namespace (so port 80 is the container's own), and passes when the kernel refused
the chown with EPERM and let busybox httpd bind port 80. The container's CapEff, read inside,
says why when it did not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.errors import SpecError

#: the options the learner chooses; the check chooses the rootfs and the namespaces
OPTIONS = ("capabilities", "no_new_privs")


def _count(kept: Any) -> str:
    return f"{len(kept)} capabilit{'y' if len(kept) == 1 else 'ies'}"


def _error_of(probe: Any, capability: str) -> str:
    return next(error for cap, _, error in probe.rows if cap == capability)


def _why_chown_worked(kept: Any, probe: Any) -> str:
    """Why root could still chown, from what was asked and what the kernel kept."""
    seen = (f"root in the container could still chown a file (its CapEff has "
            f"{_count(probe.kept)}, CAP_CHOWN among them)")
    if kept is None:
        return (f"{seen}: with no capabilities= the container keeps every capability this "
                "process has, as the lessons before this one did")
    if isinstance(kept, str) and kept.strip().upper() in ("ALL", "CAP_ALL") or (
            not isinstance(kept, str) and any(str(k).strip().upper() in ("ALL", "CAP_ALL")
                                              for k in kept)):
        return (f"{seen}: ALL keeps every capability, as --privileged does; a container keeps "
                "only what it needs")
    return f"{seen}: the capabilities you listed include CAP_CHOWN"


def check_web_server_options(web_server_options: Callable[[], object]) -> Passed:
    """`web_server_options()` returns Spec options: root inside cannot chown, can bind port 80."""
    from pycontain.observe import widgets

    options = attempt("web_server_options()", web_server_options, returns=dict,
                      instead="return a dict of keyword options for pycontain.run, naming the "
                              "capabilities the container keeps")
    assert isinstance(options, dict)
    other = sorted(set(options) - set(OPTIONS))
    expect(not other, f"the check chooses the rootfs and the namespaces itself (its own "
                      f"network namespace, so that port 80 is the container's): return only "
                      f"{' and '.join(OPTIONS)}, not {', '.join(map(str, other))}")
    kept = options.get("capabilities")
    try:
        probe = widgets.probe_capabilities(kept, no_new_privs=options.get("no_new_privs", False))
    except SpecError as e:
        raise CheckFailed(f"pycontain.run refused the options: {e}") from e
    chown, bind = _error_of(probe, "CAP_CHOWN"), _error_of(probe, "CAP_NET_BIND_SERVICE")
    problems = []
    if not chown:
        problems.append(_why_chown_worked(kept, probe))
    elif "Operation not permitted" not in chown:
        problems.append(f"chown failed, but not with EPERM, the kernel's answer to a missing "
                        f"capability: {chown}")
    if bind:
        problems.append(f"httpd could not listen on port 80 ({bind}): a port below "
                        "net.ipv4.ip_unprivileged_port_start (1024) needs CAP_NET_BIND_SERVICE, "
                        f"which the container's CapEff lacks (it kept {_count(probe.kept)}: "
                        f"{', '.join(sorted(probe.kept)) or 'none'})")
    expect(not problems, "; and ".join(problems))
    return Passed(f"root could not chown ({chown}) and httpd listened on port 80, with "
                  f"{_count(probe.kept)} kept: {', '.join(sorted(probe.kept))}")
