"""The checks of lesson 20, drop capabilities.

`check_web_server_options` takes the learner's `web_server_options()`: the Spec options of a
container in which busybox httpd listens on port 80 and then becomes nobody (`httpd -u
nobody`, as real servers give up root once they have their port), keeping no capability the
job does not need and gaining none at an execve. The check runs that job itself, as root in a
container with its own network namespace (so port 80 is the container's own): the kernel's
answers decide, read inside, in /proc/net/tcp and tcp6 (a socket listening on port 80),
/proc/<pid>/status of httpd (its Uid and CapEff) and of the shell (NoNewPrivs). Then it runs
the job once without each capability kept: each must be needed.

It recognises the wrong turns seen when the exercise was tried: the lesson's own one-capability
server (bind works, then setgroups(2) or setuid(2) is refused: the message names the call, not
the capability), Docker's set or that set less CAP_CHOWN (it works, with capabilities it does
not need), no `capabilities=` or "ALL" (every capability), a misspelt name (Spec's message),
options the check chooses itself, and a missing no_new_privs.

The stretch, `check_least`, takes `least(argv)`: the smallest set of capabilities with which
`argv` exits 0 in a container on the embedded rootfs. The check hands it commands of its own
and proves the answer by the kernel's: with the set the command exits 0, without any one of
them it does not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from pycontain import runtime
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.checks.exercise import exercise
from pycontain.errors import SpecError

#: the options the learner chooses; the check chooses the rootfs and the namespaces
OPTIONS = ("capabilities", "no_new_privs")
#: the namespaces the check's containers have: a network namespace of their own for port 80
NAMESPACES = frozenset({"mnt", "pid", "net", "uts", "ipc"})
#: the job: httpd on port 80, then nobody; what the shell reports, one fact a line
JOB = ("grep NoNewPrivs /proc/self/status\n"
       "httpd -p 80 -u nobody -h /var/www 2>/tmp/error; echo \"httpd $?\"; head -n 1 /tmp/error\n"
       "echo listening $(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"
       " | grep -c ':0050 [0-9A-F]*:0000 0A')\n"
       "for p in $(pidof httpd); do grep -E '^(Uid|CapEff):' /proc/$p/status; done\n")
NOBODY = 65534

#: the stretch's commands: one that needs three capabilities together, one that needs none
LEAST_COMMANDS = (
    ["sh", "-c", "touch /tmp/f && chown 1:1 /tmp/f && chmod 4755 /tmp/f && chroot / true"],
    ["true"],
)

WEB_HINTS = (
    "Start from the lesson's own server, \"A web server on port 80, and nothing else\", and "
    "read what httpd says when it tries to become nobody: each refusal names a system call.",
    "Which capability each call asks for is in its man page (setgroups(2), setgid(2), "
    "setuid(2): ERRORS, EPERM) and in capabilities(7). The section \"A program that carries a "
    "capability\" has root becoming nobody too, with su.",
    "Keep nothing the job does not need: the check runs it once without each capability you "
    "kept. And \"A setuid-root program\" says which option stops an execve from raising them "
    "again.",
)
LEAST_HINTS = (
    "The check's proof is the method: a set is the smallest when the command exits 0 with it "
    "and fails without any one of it. \"Try capabilities one by one\" did it by hand.",
    "Start from every capability this notebook has (capabilities.read(), the first section: a "
    "machine may withhold some) and take them away one at a time, keeping each that the "
    "command cannot do without. Trying each one alone fails for a command that needs several.",
)


class JobReport:
    """What the job's shell said: each fact it printed, by its first word."""

    def __init__(self, result: Any) -> None:
        self.result = result
        lines = [line.strip() for line in result.stdout.splitlines()]

        def after(prefix: str) -> str:
            return next((line[len(prefix):].strip() for line in lines
                         if line.startswith(prefix)), "")

        self.no_new_privs = after("NoNewPrivs:") == "1"
        self.httpd_status = after("httpd ")
        said = lines.index(f"httpd {self.httpd_status}") + 1 if self.httpd_status else 0
        self.error = lines[said] if 0 < said < len(lines) and lines[said].startswith("httpd:") \
            else ""
        self.listening = after("listening ") not in ("", "0")
        uid = after("Uid:").split()
        self.uid = int(uid[0]) if uid else None
        self.effective = after("CapEff:")

    @property
    def works(self) -> bool:
        """httpd listens on port 80 and runs as nobody."""
        return self.listening and self.uid == NOBODY and self.httpd_status == "0"


def _run_job(kept: frozenset[str], no_new_privs: bool) -> JobReport:
    from pycontain.fs import rootfs

    result = runtime.run(["sh", "-c", JOB], rootfs=str(rootfs.ensure()), namespaces=NAMESPACES,
                         capabilities=kept, no_new_privs=no_new_privs, timeout_s=30)
    report = JobReport(result)
    if result.status != 0 or not report.httpd_status:
        raise CheckFailed(f"the check's job {result.reason} and printed {result.stdout!r} "
                          f"{result.stderr.strip()!r}: is the embedded rootfs intact "
                          "(rootfs.ensure())?")
    return report


def _count(kept: Collection[str]) -> str:
    return f"{len(kept)} capabilit{'y' if len(kept) == 1 else 'ies'}"


def _is_all(kept: Any) -> bool:
    words = [kept] if isinstance(kept, str) else list(kept)
    return any(str(k).strip().upper() in ("ALL", "CAP_ALL") for k in words)


def _why_it_failed(report: JobReport) -> str:
    """What went wrong, from what httpd said: the call the kernel refused, not the answer."""
    error = report.error or f"it exited {report.httpd_status}"
    if "bind" in error:
        return (f"httpd could not listen on port 80 ({error}): a port below "
                "net.ipv4.ip_unprivileged_port_start (1024) needs a capability the container "
                "did not keep (\"A web server on port 80, and nothing else\")")
    for call in ("setgroups", "setgid", "setuid"):
        if error.startswith(f"httpd: {call}:"):
            return (f"httpd listened on port 80, then could not become nobody: {error!r}. "
                    f"That is {call}(2), which root calls to give up its groups and uid; "
                    "EPERM means a missing capability: its man page (ERRORS) and "
                    "capabilities(7) say which")
    return f"httpd did not serve port 80 as nobody: {error!r}"


@exercise(hints=WEB_HINTS)
def check_web_server_options(web_server_options: Callable[[], object]) -> Passed:
    """`web_server_options()` returns Spec options with which httpd listens on port 80 and
    then becomes nobody, keeping only the capabilities that needs and gaining none at execve."""
    options = attempt("web_server_options()", web_server_options, returns=dict,
                      instead="return a dict of keyword options for pycontain.run, naming the "
                              "capabilities the container keeps")
    assert isinstance(options, dict)
    other = sorted(set(options) - set(OPTIONS))
    expect(not other, f"the check chooses the rootfs and the namespaces itself (its own "
                      f"network namespace, so that port 80 is the container's): return only "
                      f"{' and '.join(OPTIONS)}, not {', '.join(map(str, other))}")
    kept = options.get("capabilities")
    if kept is None:
        raise CheckFailed("with no capabilities= the container keeps every capability this "
                          "process has, as the lessons before this one did: name the ones the "
                          "job needs")
    expect(not _is_all(kept), "ALL keeps every capability, as --privileged does: a container "
                              "keeps only what its job needs")
    from pycontain.security import capabilities

    no_new_privs = bool(options.get("no_new_privs", False))
    try:
        chosen = capabilities.parse("capabilities", kept)
        report = _run_job(chosen, no_new_privs)
    except SpecError as e:
        raise CheckFailed(f"pycontain.run refused the options: {e}") from e
    expect(report.works, _why_it_failed(report))
    needed = {}
    for cap in sorted(chosen):
        without = _run_job(chosen - {cap}, no_new_privs)
        if without.works:
            spare = sum(_run_job(chosen - {other}, no_new_privs).works
                        for other in chosen if other > cap)
            more = f" (and {spare} more of the {_count(chosen)} you kept)" if spare else ""
            raise CheckFailed(f"httpd still listens on port 80 as nobody without {cap}{more}: "
                              "a container keeps only what its job needs; take each away and "
                              "watch what httpd says")
        needed[cap] = without.error or f"httpd exited {without.httpd_status}"
    expect(report.no_new_privs,
           "the job works with only what it needs, but NoNewPrivs is 0: a setuid-root program "
           "or a file capability in the image could raise the container's powers again at an "
           "execve (\"A setuid-root program\")")
    return Passed(
        f"httpd listened on port 80, then ran as nobody (Uid {report.uid}) with CapEff "
        f"{report.effective}: setuid(2) away from uid 0 emptied its sets. The container kept "
        f"{_count(chosen)}, each needed: "
        + "; ".join(f"without {cap}, {error!r}" for cap, error in needed.items())
        + "; and NoNewPrivs 1")


def _least_names(found: Any, shown: str) -> frozenset[str]:
    from pycontain.security import capabilities

    expect(found is not None,
           f"{shown} returned None: return a set of capability names (None, as "
           "capabilities=, would keep every capability; a command that needs none has the "
           "empty set, set())")
    expect(not isinstance(found, str | bytes) and isinstance(found, Collection),
           f"{shown} returned {found!r}: return a set of capability names, such as "
           "{'CAP_KILL'}")
    try:
        return capabilities.parse("capabilities", found)
    except SpecError as e:
        raise CheckFailed(f"{shown} returned {sorted(map(str, found))}: {e}") from e


@exercise(hints=LEAST_HINTS, stretch=True)
def check_least(least: Callable[[list[str]], object]) -> Passed:
    """Stretch: `least(argv)` returns the smallest set of capabilities with which `argv`
    exits 0 in a container on the embedded rootfs; the check proves it, capability by
    capability."""
    from pycontain.fs import rootfs

    root = str(rootfs.ensure())

    def status(argv: list[str], kept: frozenset[str]) -> Any:
        return runtime.run(argv, rootfs=root, capabilities=kept, timeout_s=30)

    found = []
    for argv in LEAST_COMMANDS:
        shown = f"least({list(argv)!r})"
        kept = _least_names(attempt(shown, least, list(argv)), shown)
        try:
            done = status(list(argv), kept)
        except SpecError as e:
            raise CheckFailed(f"{shown} returned a set pycontain.run refuses: {e}") from e
        alone = (" (tried one at a time, no capability alone is enough for a command that "
                 "needs several together)") if not kept else ""
        expect(done.status == 0,
               f"with {sorted(kept) or 'no capability'}, {list(argv)!r} {done.reason}: "
               f"{done.stderr.strip()!r}; a capability it needs is missing{alone}")
        for cap in sorted(kept):
            expect(status(list(argv), kept - {cap}).status != 0,
                   f"{list(argv)!r} still exits 0 without {cap}: {shown} is not the smallest")
        found.append(f"{list(argv)!r} needs {', '.join(sorted(kept)) or 'none'}")
    return Passed("; ".join(found) + ": each one needed, as the kernel's answers without it "
                                     "proved")
