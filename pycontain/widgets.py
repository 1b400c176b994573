"""Controls for live experiments in JupyterLab, each with a plain function underneath (lesson 02).

Every widget here is a thin shell around a function that does the experiment and returns a
result that displays as a table: the function works headless (CI, a terminal), the widget only
calls it again when you press the button. `hostname_playground()` runs a container with the
hostname you type and shows the host's and the container's names and UTS namespaces side by side.

See also: uts_namespaces(7), sethostname(2); ipywidgets (https://ipywidgets.readthedocs.io).
"""

from __future__ import annotations

import html
import socket
from dataclasses import dataclass
from typing import Any

from pycontain import procfs, runtime
from pycontain.errors import PycontainError, format_error
from pycontain.procfs import NamespaceId

#: what the container runs: print its hostname and its UTS namespace, as seen from inside
_REPORT = ["sh", "-c", "hostname; readlink /proc/self/ns/uts"]


@dataclass(frozen=True)
class HostnameComparison:
    """The host's and a container's hostname and UTS namespace, as each sees its own."""

    host: str
    container: str
    host_uts: NamespaceId
    container_uts: NamespaceId

    def _rows(self) -> list[tuple[str, str, str]]:
        return [("host (this notebook)", self.host, str(self.host_uts)),
                ("container", self.container, str(self.container_uts))]

    def __repr__(self) -> str:
        """
        >>> HostnameComparison("vm", "box-1", NamespaceId("uts", 1), NamespaceId("uts", 2))
        host (this notebook)  vm     uts:[1]
        container             box-1  uts:[2]
        """
        rows = self._rows()
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         for r in rows)

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td>{who}</td><td><code>{html.escape(name)}</code></td>"
                       f"<td><code>{ns}</code></td></tr>" for who, name, ns in self._rows())
        return ("<table><tr><th></th><th>hostname</th><th>UTS namespace</th></tr>"
                f"{body}</table>")


def compare_hostnames(hostname: str, *, timeout_s: float = 10.0) -> HostnameComparison:
    """Run a container with its own UTS namespace and `hostname`; compare it with the host.

    Raises:
        SpecError: `hostname` is not 1-64 bytes; no container was started.
    """
    result = runtime.run(_REPORT, namespaces={"uts"}, hostname=hostname, timeout_s=timeout_s)
    lines = result.stdout.splitlines()
    if result.status != 0 or len(lines) != 2:
        raise PycontainError(f"the container {' '.join(_REPORT)!r} {result.reason}: "
                             f"{result.stderr.strip()}")
    return HostnameComparison(socket.gethostname(), lines[0], procfs.namespace("self", "uts"),
                              procfs.parse_ns_link(lines[1]))


def hostname_playground(hostname: str = "box-1") -> Any:
    """A text box and a button: each press runs a container with the hostname typed in.

    Without a front end (CI) the widget still builds and runs once, with `hostname`.
    """
    import ipywidgets

    name = ipywidgets.Text(value=hostname, description="hostname")
    button = ipywidgets.Button(description="run a container", icon="play")
    table = ipywidgets.HTML()

    def refresh(_: object = None) -> None:
        try:
            table.value = compare_hostnames(name.value)._repr_html_()
        except PycontainError as e:
            table.value = f"<pre>{html.escape(format_error(e))}</pre>"

    button.on_click(refresh)
    refresh()
    return ipywidgets.VBox([ipywidgets.HBox([name, button]), table])


def propagation_toggle(base: str, kind: str = "shared") -> Any:
    """Toggle buttons, one per propagation type: each press reruns the propagation experiment of
    lesson 04 (`pycontain.namespaces.mnt.experiment`) on the shared mount `base`, and shows
    whether the box's mount reached the host and the host's mount reached the box.

    Without a front end (CI) the widget still builds and runs once, with `kind`.
    """
    import ipywidgets

    from pycontain.namespaces import mnt

    choice = ipywidgets.ToggleButtons(options=list(mnt.PROPAGATION_FLAGS), value=kind,
                                      description="in the box")
    table = ipywidgets.HTML()

    def refresh(_: object = None) -> None:
        try:
            table.value = mnt.experiment(base, choice.value)._repr_html_()
        except PycontainError as e:
            table.value = f"<pre>{html.escape(format_error(e))}</pre>"

    choice.observe(refresh, names="value")
    refresh()
    return ipywidgets.VBox([choice, table])
