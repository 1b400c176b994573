"""The checks of lesson 08, give a container a network.

The check asks the kernel, not the learner's code: the container must run on the bridge, the
nft table must hold its DNAT rule, an HTTP request from this host to the published port must
be answered by the server inside, and `practice.close()` must stop the container so that its
veth goes too.
"""

from __future__ import annotations

from collections.abc import Callable

from pycontain.checks import CheckFailed, Passed, attempt, expect, fetch
from pycontain.errors import SpecError, format_error
from pycontain.fs import rootfs
from pycontain.lab import Lab
from pycontain.namespaces import net
from pycontain.network import nft
from pycontain.runtime import Container


def _tidy(box: object) -> None:
    """Stop and wait for `box`: waiting releases its place on the bridge."""
    if isinstance(box, Container):
        box.kill()
        box.wait()


def check_published(publish_page: Callable[[Lab, int], object], port: int) -> Passed:
    """Call `publish_page(practice, port)`; it returns a running container on the bridge whose
    web server (port 80 inside) answers on host port `port`."""
    try:
        rootfs.require_tools(rootfs.ensure(), "httpd")
    except SpecError as e:
        raise CheckFailed(f"the embedded rootfs cannot serve a page: {format_error(e)}") from e
    practice = Lab(check=False)
    box: Container | None = None
    try:
        box = attempt(f"publish_page(practice, {port})", publish_page, practice, port,
                      returns=Container, instead="return the container you started with "
                      "pycontain.spawn(...), still running its web server")
        expect(box.running, "the container you returned has ended already: keep its web "
                            "server running (httpd -f stays in the foreground)")
        expect(box.spec.network == "bridge" and box.network is not None,
               "the container has no network but its own loopback: start it with "
               "network='bridge'")
        assert box.network is not None
        rule = f"dport {port} dnat to {box.network.address}:80"
        expect(rule in nft.rules(),
               f"the nft table has no rule '{rule}': publish the port with "
               f"publish=['{port}:80']")
        gateway = next(box.network.subnet.hosts())
        page = fetch(f"http://{gateway}:{port}/")
        expect(bool(page), f"nothing answered http://{gateway}:{port}/: does the container "
                           "run a web server on port 80 (busybox `httpd -f -p 80 -h DIR`) "
                           "with an index.html in DIR?")
        veth = box.network.veth
    except BaseException:
        practice.close()
        _tidy(box)
        raise
    practice.close()
    running = box.running
    _tidy(box)  # a failed attempt leaves nothing behind either
    expect(not running, "practice.close() left the container running: register its stop "
                            "with practice.defer(...)")
    expect(veth not in {link["name"] for link in net.links()},
           f"the container's veth {veth} is still on the host after practice.close()")
    return Passed(f"host port {port} reached the server inside ({page.strip()[:40]!r}), "
                  "through the DNAT rule; all gone after close()")
