"""Every attack of lesson 23 against a weakened container and against pycontain's defaults,
side by side, and a widget that runs one of them either way.

`WEAKENED` says, per attack, what the weak container gives away (in `pycontain.run`'s options);
`run(name, directory, weakened=...)` plays it in a fresh `pycontain-` temp dir under
`directory` and returns its `Outcome`; `playground(directory)` is the same with a menu.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from pycontain.audit import core_pattern, escape, host_disk, leaky_vessels, self_exe, shocker
from pycontain.audit.outcome import DEFAULTS, PRIVILEGED, Outcome
from pycontain.errors import SpecError
from pycontain.security import capabilities
from pycontain.settings import PREFIX

#: attack -> the options that weaken the container for it (on top of DEFAULTS), in words
WEAKENED: dict[str, tuple[dict[str, Any], str]] = {
    "leaky vessels": ({}, "a runtime that leaks a descriptor, and runc's old init step"),
    "shocker": ({"capabilities": capabilities.DEFAULT | {"CAP_DAC_READ_SEARCH"},
                 "seccomp": None}, "--cap-add DAC_READ_SEARCH --security-opt seccomp=unconfined"),
    "core_pattern": ({"readonly_paths": ()}, "--security-opt systempaths=unconfined"),
    "host disk": (PRIVILEGED, "--privileged"),
    "chroot escape": ({"root_switch": "chroot"}, "the root switched with chroot(2)"),
    "/proc/self/exe": ({**PRIVILEGED, **self_exe.HOST_PIDS},
                       "--privileged, no PID namespace, -v /proc:/host/proc:ro"),
}


def _chroot(directory: str, weakened: bool, **options: Any) -> Outcome:
    marker = escape.place_marker(directory)
    seen = escape.attempt(marker, **options)
    return Outcome("chroot escape", weakened, seen.escaped(marker),
                   f"climbed to: {' '.join(seen.reached)[:120]}")


#: attack -> how to play it: f(directory, weakened, **options) -> Outcome
PLAY: dict[str, Callable[..., Outcome]] = {
    "leaky vessels": lambda d, weakened, **o: leaky_vessels.attempt(
        escape.place_marker(d), weakened=weakened, **o),
    "shocker": lambda d, weakened, **o: shocker.attempt(d, weakened=weakened, **o),
    "core_pattern": lambda d, weakened, **o: core_pattern.attempt(weakened=weakened, **o),
    "host disk": lambda d, weakened, **o: host_disk.attempt(d, weakened=weakened, **o),
    "chroot escape": _chroot,
    "/proc/self/exe": lambda d, weakened, **o: self_exe.attempt(d, weakened=weakened, **o),
}


def run(name: str, directory: str | os.PathLike[str], *, weakened: bool) -> Outcome:
    """Play the attack `name` in a new temp dir under `directory`, against the weakened
    container (`WEAKENED[name]`) or pycontain's defaults."""
    if name not in PLAY:
        raise SpecError("attack", f"one of {', '.join(PLAY)}", name)
    options = {**DEFAULTS, **(WEAKENED[name][0] if weakened else {})}
    label = name.strip("/").replace(" ", "-").replace("/", "-")
    where = tempfile.mkdtemp(prefix=f"{PREFIX}{label}-", dir=directory)
    return PLAY[name](where, weakened, **options)


def playground(directory: str | os.PathLike[str], name: str = "shocker") -> Any:
    """A menu of the attacks and a tick box "weakened": each press plays the attack chosen,
    against the container chosen, and shows what it saw. It runs once at once (CI)."""
    import html

    import ipywidgets

    from pycontain.observe.widgets import _control_and_button

    attack = ipywidgets.Dropdown(options=list(PLAY), value=name, description="attack")
    weak = ipywidgets.Checkbox(value=True, description="weakened", indent=False)

    def render(_: object) -> str:
        outcome = run(attack.value, directory, weakened=weak.value)
        colour = "#fce8e6" if outcome.escaped else "#e6f4ea"
        given = WEAKENED[attack.value][1] if weak.value else "pycontain's defaults"
        return (f'<div style="background:{colour};color:#202124;padding:4px">'
                f"<b>{html.escape(given)}</b>: "
                f"{'ESCAPED' if outcome.escaped else 'stayed in'}<br>"
                f"<code>{html.escape(outcome.evidence)}</code></div>")

    return _control_and_button(ipywidgets.HBox([attack, weak]), render)
