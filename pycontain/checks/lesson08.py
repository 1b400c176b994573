"""The checks of lesson 08, give a container a network.

The check asks the kernel, not the learner's code: the container must run on the bridge, the
nft table must hold its DNAT rule, an HTTP request from this host to the published port must
be answered by the server inside, and `practice.close()` must stop the container so that its
veth goes too. Whatever the learner's function started is stopped when it raises or the check
fails (`checks.attempt`, `checks.releasing`): a failed try leaves no container, veth or bridge.
"""

from __future__ import annotations

from collections.abc import Callable

from pycontain.checks import CheckFailed, Passed, attempt, expect, fetch, releasing
from pycontain.checks.exercise import exercise
from pycontain.errors import SpecError, format_error
from pycontain.fs import rootfs
from pycontain.lab import Lab
from pycontain.namespaces import net
from pycontain.network import nft
from pycontain.runtime import Container

PUBLISH_HINTS = (
    "Look back at \"Go out through NAT, come in through a published port\": which two options "
    "of pycontain.spawn put a container on the bridge and make a DNAT rule for a host port?",
    "The server must stay in the foreground (busybox httpd's -f), and find an index.html in "
    "the directory -h names: the rootfs is read-only for you, /tmp is not. One `sh -c` can "
    "make the page and then exec the server.",
    "practice.defer(undo, what) takes a function that stops the container (kill it, then wait "
    "for it: waiting releases its veth) and a few words saying what that function does.",
)
TWO_HINTS = (
    "Both containers share one bridge and one nft table; each published port is its own DNAT "
    "rule. Can you reuse your publish_page?",
    "The check tells the pages apart: make each container's index.html say which port it is "
    "published on.",
)


def _require_httpd() -> None:
    try:
        rootfs.require_tools(rootfs.ensure(), "httpd")
    except SpecError as e:
        raise CheckFailed(f"the embedded rootfs cannot serve a page: {format_error(e)}") from e


def _judge_published(box: object, port: int) -> tuple[str, str]:
    """A running container on the bridge whose server answers on host `port`: (page, veth)."""
    expect(isinstance(box, Container), f"{box!r} is not a container: return the one you "
                                       "started with pycontain.spawn(...)")
    assert isinstance(box, Container)
    if not box.running:  # the message waits for it: only once it has ended
        raise CheckFailed(f"the container published on {port} has ended already "
                          f"({box.wait().reason}): keep its web server running in the "
                          "foreground (busybox httpd's -f)")
    expect(box.spec.network == "bridge" and box.network is not None,
           "the container has no network but its own loopback: which `network=` puts it on "
           "the bridge? (the section \"Put containers on a bridge\")")
    assert box.network is not None
    rule = f"dport {port} dnat to {box.network.address}:80"
    expect(rule in nft.rules(),
           f"the nft table has no rule '{rule}': port {port} of this host is not published to "
           "the container's port 80 (see `publish=` in \"Go out through NAT\")")
    gateway = next(box.network.subnet.hosts())
    page = fetch(f"http://{gateway}:{port}/")
    if not page:
        ended = "" if box.running else f" It has ended: {box.wait().stderr[-200:]!r}"
        raise CheckFailed(f"nothing answered http://{gateway}:{port}/, although the DNAT rule "
                          "is there: does the container run a web server on port 80 (busybox "
                          f"`httpd -f -p 80 -h DIR`) with an index.html in DIR?{ended}")
    return page, str(box.network.veth)


def _closed(practice: Lab, boxes: list[Container], veths: list[str]) -> None:
    """practice.close() must stop every container in `boxes`, and so remove their veths."""
    practice.close()
    running = [b for b in boxes if b.running]
    for box in boxes:
        box.kill()
        box.wait()
    expect(not running, f"practice.close() left {len(running)} container(s) running (the check "
                        "stopped them): register a stop for each with practice.defer(undo, "
                        "what), a function that stops it and words that say so")
    left = set(veths) & {link["name"] for link in net.links()}
    expect(not left, f"the containers' veths {sorted(left)} are still on the host after "
                     "practice.close(): does your undo wait for the container? Waiting "
                     "releases its veth")


@exercise(hints=PUBLISH_HINTS)
def check_published(publish_page: Callable[[Lab, int], object], port: int) -> Passed:
    """Call `publish_page(practice, port)`; it returns a running container on the bridge whose
    web server (port 80 inside) answers on host port `port`."""
    _require_httpd()
    practice = Lab(check=False)
    with releasing(practice):
        box = attempt(f"publish_page(practice, {port})", publish_page, practice, port,
                      returns=Container, instead="return the container you started with "
                      "pycontain.spawn(...), still running its web server")
        page, veth = _judge_published(box, port)
    _closed(practice, [box], [veth])
    return Passed(f"host port {port} reached the server inside ({page.strip()[:40]!r}), "
                  "through the DNAT rule; all gone after close()")


@exercise(hints=TWO_HINTS, stretch=True)
def check_two_published(publish_two: Callable[[Lab, int, int], object], first: int,
                        second: int) -> Passed:
    """Stretch: `publish_two(practice, first, second)` returns two running containers on the
    bridge, each serving a page that names its own port; close() removes both."""
    _require_httpd()
    practice = Lab(check=False)
    with releasing(practice):
        boxes = attempt(f"publish_two(practice, {first}, {second})", publish_two, practice,
                        first, second, returns=tuple, instead="return (box, box), the two "
                        "containers, in the order of their ports")
        expect(len(boxes) == 2, f"publish_two returned {len(boxes)} value(s): return (box, box)")
        (page_1, veth_1), (page_2, veth_2) = (_judge_published(boxes[0], first),
                                              _judge_published(boxes[1], second))
        veths = [veth_1, veth_2]
        for page, port, other in ((page_1, first, second), (page_2, second, first)):
            expect(str(port) in page and str(other) not in page,
                   f"port {port} served {page.strip()[:60]!r}: each page should name its own "
                   "port only, so that the check can tell the two servers apart")
    _closed(practice, list(boxes), veths)
    return Passed(f"ports {first} and {second} reached two servers on one bridge, each through "
                  "its own DNAT rule; close() removed both veths")
