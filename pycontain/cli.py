"""The `pycontain` command: the only code that prints errors (one line, the hint, no traceback)."""

from __future__ import annotations

import _signal as signal  # `signal` without its enums (~1 ms at every start), as init does
import atexit
import os
import sys
from types import SimpleNamespace

from pycontain.errors import (
    EXIT_RUNTIME_ERROR,
    PycontainError,
    SpecError,
    exit_status,
    format_error,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from types import FrameType
    from typing import Any, NoReturn

#: the options of `pycontain run` but the limits' (`run_options()` adds those): flag ->
#: (metavar, the Spec parameter it sets, help). Both parsers read this table, and errors name
#: the flag from it: one source of truth.
BASE_RUN_OPTIONS = {
    "--hostname": ("NAME", "hostname", "the container's hostname (needs uts)"),
    "--namespaces": ("LIST", "namespaces", "comma-separated namespaces to create "
                                           "from {supported} (default: {default})"),
    "--rootfs": ("DIR", "rootfs", "make DIR the container's / (needs mnt)"),
    "--map-root": ("UID", "uid_map", "with a user namespace, map root and 65535 more ids inside "
                                     "to UID and up outside (default 100000; implies "
                                     "--user-namespace); without root, only your own uid, "
                                     "which is the default then"),
    "--boottime-offset": ("SECONDS", "time_offsets['boottime']",
                          "with a time namespace, shift CLOCK_BOOTTIME, and so /proc/uptime, "
                          "by SECONDS (86400: booted a day earlier; implies --time-namespace)"),
    "--monotonic-offset": ("SECONDS", "time_offsets['monotonic']",
                           "with a time namespace, shift CLOCK_MONOTONIC by SECONDS "
                           "(implies --time-namespace)"),
    "--network": ("MODE", "network", "none (default: an own network namespace with only lo, "
                                     "down), bridge (eth0 on pycontain-br0, 10.207.0.0/24 or "
                                     "$PYCONTAIN_SUBNET, with NAT out) or host (the host's "
                                     "network)"),
    "--publish": ("HOST:CONTAINER[/tcp|udp]", "publish",
                  "-p: forward a host port to the container (DNAT; repeatable; needs "
                  "--network bridge)"),
    "--cap-add": ("CAP", "capabilities['add']",
                  "keep a capability beyond the default set: CHOWN or CAP_CHOWN, any case, or "
                  "ALL (repeatable, or a comma-separated list)"),
    "--cap-drop": ("CAP", "capabilities['drop']",
                   "drop a capability of the default set, as --cap-add names it; ALL drops "
                   "every one but those added"),
    "--security-opt": ("OPT", "no_new_privs",
                       "no-new-privileges=false lets a setuid program or a file capability "
                       "inside gain privileges again (default: no-new-privileges=true, except "
                       "with --privileged); seccomp=unconfined turns the system call filter "
                       "off, seccomp=FILE uses a profile in Docker's JSON format instead of "
                       "pycontain's default; systempaths=unconfined leaves /proc/kcore, "
                       "/proc/keys, ... unmasked and /proc/sys writable (repeatable)"),
    "--name": ("NAME", "name", "with -d: a unique name to find the container by, instead of "
                               "its id (docker's: letters, digits, '_', '.', '-')"),
    "--env": ("K=V", "env", "-e: set the environment variable K to V in the container, beside "
                            "PATH, HOME and HOSTNAME (repeatable; K alone: this shell's value "
                            "of K, left out when it has none)"),
    "--env-file": ("FILE", "env_file", "read environment variables from FILE: one K=V a line, "
                                       "# comments, K alone as -e K (repeatable; -e wins)"),
    "--workdir": ("DIR", "cwd", "-w: the command's working directory, an absolute path inside "
                                "the container (default /)"),
    "--user": ("UID[:GID]", "user", "-u: run the command as this user: numbers, or a "
                                    "name[:group] the container's /etc/passwd (and /etc/group) "
                                    "knows (default root); it keeps no capability then"),
    "--volume": ("HOST:CONTAINER[:ro]", "volumes",
                 "-v: bind the host path HOST (absolute, existing) at CONTAINER (absolute, not "
                 "over /proc, /sys or /dev) inside the container; :ro read-only (repeatable; "
                 "needs --rootfs)"),
    "--egress-rate": ("RATE", "egress_rate", "shape what the container sends to RATE, in tc's "
                                             "units: 10mbit, 500kbit, 2mbps (bytes/s) (tbf on "
                                             "an IFB; needs --network bridge)"),
    "--ingress-rate": ("RATE", "ingress_rate", "shape what the container receives to RATE (tbf "
                                               "on its veth; needs --network bridge)"),
}
#: options that collect a list when given more than once
RUN_REPEATED = ("--publish", "--cap-add", "--cap-drop", "--security-opt", "--env", "--env-file",
                "--volume")
#: the short spellings of options
RUN_SHORT = {"--publish": "-p", "--detach": "-d", "--env": "-e", "--workdir": "-w", "--user": "-u",
             "--volume": "-v", "--interactive": "-i", "--tty": "-t"}
#: the options of `pycontain run` that take no value: flag -> (Spec parameter, help). Both
#: parsers read this too.
RUN_FLAGS = {
    "--detach": ("detach", "-d: run the container in the background and print its id; a "
                           "supervisor waits for it, keeps its logs and state (`pycontain ps`, "
                           "`logs`, `stop`, `rm`), and gives it a cgroup even without limits"),
    "--interactive": ("interactive", "-i: keep stdin open; with -t, what you type goes to the "
                                     "container (without -d)"),
    "--tty": ("tty", "-t: give the command a pseudo-terminal as its stdin, stdout and stderr, "
                     "as big as this one (without -d; with -i, stdin must be a terminal)"),
    "--rm": ("rm", "with -d: remove the container's state and logs when it ends (without -d "
                   "a container never leaves any)"),
    "--init": ("init", "run a minimal init as PID 1 that reaps zombies and forwards signals; "
                       "the command runs as PID 2 (needs pid)"),
    "--read-only": ("read_only", "make the rootfs read-only; /tmp stays a writable tmpfs "
                                 "(needs --rootfs)"),
    "--user-namespace": ("user_namespace", "add a user namespace: root inside is an "
                                           "unprivileged uid outside (see --map-root)"),
    "--time-namespace": ("time_namespace", "add a time namespace: the container's monotonic and "
                                           "boot-time clocks may be shifted, never the wall "
                                           "clock (see --boottime-offset)"),
    "--no-overlay": ("overlay", "let the container write into the rootfs directory itself, "
                                "instead of a throw-away overlay that keeps it unchanged "
                                "(needs --rootfs)"),
    "--no-cgroup-view": ("cgroup_view", "leave /sys/fs/cgroup empty instead of showing the "
                                        "container's own cgroups there, read-only (with "
                                        "--rootfs and limits)"),
    "--trace": ("trace", "print to stderr each step that builds the container and each system "
                         "call it makes, with its arguments, result, time and the lesson that "
                         "explains it"),
    "--privileged": ("capabilities['all']",
                     "keep every capability pycontain has (CAP_SYS_ADMIN, CAP_MKNOD, ... none "
                     "dropped), no no_new_privs, no seccomp filter, no masked or read-only "
                     "/proc paths and no cgroup view: root inside may then mount, make device "
                     "nodes, load modules, write the host's sysctls, change the host's clock: "
                     "whatever root outside may, except what its namespaces hide"),
}
#: what the flags of the lifecycle set: parameters of `state` and `supervisor`, not of Spec
LIFECYCLE_PARAMETERS = ("detach", "rm", "name", "container", "tail", "time", "signal",
                        "env_file", "interactive", "tty", "since", "until")
#: how an error names each Spec parameter: the flag that sets it (a repeated option by its
#: short spelling, as it is mostly written: `-p 8080:80`), and the command by its place
BASE_FLAG_OF = {
    **{parameter: RUN_SHORT.get(flag, flag)
       for flag, (_, parameter, _) in BASE_RUN_OPTIONS.items()},
    **{parameter: flag for flag, (parameter, _) in RUN_FLAGS.items()},
    "argv": "the command after --", "command": "the command after --",
    # Spec refuses a capability this process lacks: on the command line one added or a default
    "capabilities": "--cap-add",
    "seccomp": "--security-opt seccomp",
    # the lifecycle verbs' arguments
    "container": "CONTAINER", "tail": "--tail", "time": "-t", "signal": "-s",
    "tty": "-t", "interactive": "-i",
    "since": "--since", "until": "--until",
}


# The limits' flags come from the controller modules (`cgroups.controllers`, `FIELDS`), whose
# import costs ~2 ms of every `pycontain run`: they are read only when a word on the command
# line is not one of the other options, for help, and for an error's wording.
_TABLES: dict[str, dict[str, Any]] = {}


def limit_flags() -> dict[str, str]:
    """The limits' flags: flag -> the Spec parameter it sets, a field of Limits."""
    if "limits" not in _TABLES:
        from pycontain.cgroups import controllers

        _TABLES["limits"] = {field.flag: field for field in controllers.fields()}
    return {flag: field.name for flag, field in _TABLES["limits"].items()}


def run_options() -> dict[str, tuple[str, str, str]]:
    """Every option of `pycontain run` with a value: `BASE_RUN_OPTIONS` and the limits'."""
    limit_flags()
    limits = {flag: (field.metavar, field.name, field.help)
              for flag, field in _TABLES["limits"].items()}
    first = dict(list(BASE_RUN_OPTIONS.items())[:3])  # --hostname, --namespaces, --rootfs
    return {**first, **limits, **BASE_RUN_OPTIONS}


def flag_of() -> dict[str, str]:
    """How an error names each Spec parameter: `BASE_FLAG_OF` and the limits' flags."""
    return {**{name: flag for flag, name in limit_flags().items()}, **BASE_FLAG_OF}


def __getattr__(name: str) -> Any:
    """`cli.RUN_OPTIONS`, `cli.FLAG_OF`, `cli.LIMIT_FLAGS`: the whole tables, built on use."""
    tables = {"RUN_OPTIONS": run_options, "FLAG_OF": flag_of, "LIMIT_FLAGS": limit_flags}
    if name in tables:
        return tables[name]()
    raise AttributeError(f"module 'pycontain.cli' has no attribute {name!r}")


#: how an error of `pycontain grade` names its parameters (course.grade.GradeLimits)
GRADE_FLAG_OF = {"time_limit_s": "--timeout", "memory_max": "--memory",
                 "pids_max": "--pids-limit", "reference": "--notebooks"}

RUN_EPILOG = """\
Without --rootfs the container keeps the host's filesystem view (only the namespaces differ);
with --rootfs DIR, DIR becomes its / (try `--rootfs "$(pycontain rootfs)"`), under a throw-away
overlay: the container's writes go to a temporary upper dir, removed when it ends, and DIR, the
image, never changes, as with `docker run --rm` (--no-overlay writes to DIR itself).

What a container may do: root inside keeps Docker's default capabilities (CHOWN, DAC_OVERRIDE,
FSETID, FOWNER, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL,
AUDIT_WRITE, NET_RAW) but not MKNOD, since pycontain has no device controller to stop a node
once made; none inheritable or ambient, and no-new-privileges on. A seccomp filter refuses what
Docker's default profile refuses (unshare, mount, keyctl, bpf, module loading, ...). So it cannot
mount, set the clock or make a device node; --cap-add SYS_ADMIN allows mounts, --privileged
keeps everything. With its own mount namespace, the host's kernel files it could misuse are
masked (/proc/kcore, /proc/keys, /proc/timer_list, /sys/firmware, ...) or read-only (/proc/sys,
/proc/sysrq-trigger, ...), as runc does; with --rootfs and limits it sees its own cgroups,
read-only, at /sys/fs/cgroup. Its hostname is its short id unless --hostname names it.

exit status: the command's own; 125 when pycontain failed; 126 when the command could not be
executed; 127 when it was not found; 128+N when it was killed by signal N.
example: pycontain run --namespaces uts --hostname demo -- hostname"""


def _parser() -> argparse.ArgumentParser:
    import argparse

    from pycontain.runtime import DEFAULT_NAMESPACES, SUPPORTED_NAMESPACES

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:  # 125, as `docker run` does, not 2
            self.print_usage(sys.stderr)
            self.exit(EXIT_RUNTIME_ERROR, f"pycontain: {message}\n")

        def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
            # A verb refuses what it does not know itself, with its own usage and the nearest
            # flag: left to the top-level parser, `run --hostnme` got the usage of `pycontain`.
            parsed, extras = super().parse_known_args(args, namespace)
            if extras:
                self.error(f"unrecognized arguments: {' '.join(extras)}"
                           + _nearest(extras[0], list(self._option_string_actions)))
            # `--hostname=--`: argparse < 3.12 stores [], later ones '--'; refused alike
            for action in self._actions:
                value = getattr(parsed, action.dest, None)
                given = value if isinstance(action, argparse._AppendAction) else [value]
                if action.option_strings and action.nargs is None and \
                        ([] in (given or []) or "--" in (given or [])):
                    self.error(f"argument {'/'.join(action.option_strings)}: "
                               "expected one argument")
            return parsed, extras

    supported = ",".join(sorted(SUPPORTED_NAMESPACES))
    default = ",".join(sorted(DEFAULT_NAMESPACES))
    parser = Parser(
        prog="pycontain", description="Learn how Linux containers work by building one.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    run = verbs.add_parser(
        "run", help="run a command in a new container", epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run CMD as the first process of a new container, like `docker run`.")
    create = verbs.add_parser(
        "create", help="create a detached container, to start later", epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check run's options and make a detached container's state (status "
                    "created) without starting it; `pycontain start` starts it, as "
                    "`docker create` and `docker start`. -d is implied. Prints its id.")
    audit = verbs.add_parser(
        "audit", help="audit a container made with run's options: what isolates it, what not",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a probe as the command of a container made with the options of "
                    "`pycontain run`, and print what isolates it and what does not, line by "
                    "line with the evidence (lesson 23). Exit status 0 when every line is "
                    "green, 1 when one is red, 125 when the audit could not run.")
    audit.add_argument("--json", action="store_true", help="print the lines as JSON lines")
    for verb in (run, create, audit):
        for flag, (metavar, _, text) in run_options().items():
            short = [RUN_SHORT[flag]] if flag in RUN_SHORT else []
            verb.add_argument(*short, flag, metavar=metavar,
                              action="append" if flag in RUN_REPEATED else "store",
                              help=text.format(supported=supported, default=default))
        for flag, (_, text) in RUN_FLAGS.items():
            short = [RUN_SHORT[flag]] if flag in RUN_SHORT else []
            verb.add_argument(*short, flag, action="store_true", help=text)
        verb.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")

    _lifecycle_parsers(verbs)
    _exec_parsers(verbs)
    rootfs = verbs.add_parser("rootfs", help="print the embedded rootfs path, building it first",
                              description="Print the path of the embedded root filesystem, "
                                          "building it offline when missing, and again when "
                                          "stale (built by an older recipe, or from host "
                                          "programs while busybox is installed now).")
    rootfs.add_argument("--rebuild", action="store_true", help="build it again from scratch")
    rootfs.add_argument("--host-binaries", action="store_true",
                        help="build from host programs even when busybox is installed")

    verbs.add_parser("doctor", help="check whether this machine is ready for the lab",
                     description="Print the preflight table; exit 0 only when the lab is ready.")
    cleanup = verbs.add_parser(
        "cleanup", help="remove every pycontain- leftover on this machine",
        description="Remove every detached container (running or crashed: its supervisor "
                    "and processes killed, its run directory in /run/pycontain) and every "
                    "pycontain- mount, directory, network namespace, link and "
                    "cgroup on this machine, and print what was removed. This is machine-wide: "
                    "it also removes what another user's notebook, another checkout's tests or "
                    "a running container use right now. --orphans removes only what notebooks "
                    "that have ended left behind.")
    cleanup.add_argument("--orphans", action="store_true",
                         help="only the temp dirs of labs whose process has ended (a notebook "
                              "killed before its clean-up cell); nothing anyone still uses")
    grade = verbs.add_parser(
        "grade", help="grade learner notebooks: run each in a container, score its checks",
        description="Run each learner notebook of each SUBMISSION (a notebook, or a folder of "
                    "one student's notebooks) top to bottom in a fresh kernel, inside a "
                    "pycontain container with its own memory, process and time limits, and "
                    "score its check cells against the pristine learner build: passed or "
                    "failed, the check's message, the points of the lesson's front matter. "
                    "An edited or deleted check cell fails. Exit status 0 only when every "
                    "exercise of every submission passed, 1 otherwise.")
    grade.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    grade.add_argument("--timeout", metavar="SECONDS", type=float, default=600.0,
                       help="the time limit of each notebook, all its cells (default 600)")
    grade.add_argument("--memory", metavar="BYTES", default="2G",
                       help="memory.max of each notebook's container (default 2G)")
    grade.add_argument("--pids-limit", metavar="N", type=int, default=512,
                       help="pids.max of each notebook's container (default 512)")
    grade.add_argument("--format", choices=("table", "json"), default="table",
                       help="what to print: a table (default) or JSON")
    grade.add_argument("--json", metavar="FILE", help="also write the JSON to FILE")
    grade.add_argument("--junit", metavar="FILE", help="also write JUnit XML to FILE")
    grade.add_argument("--gradescope", metavar="FILE",
                       help="also write Gradescope's results.json to FILE (with several "
                            "submissions FILE is a folder: FILE/SUBMISSION/results.json)")
    grade.add_argument("--notebooks", metavar="DIR",
                       help="the pristine learner notebooks to grade against (default: this "
                            "checkout's notebooks/)")
    grade.add_argument("--sweep", action="store_true",
                       help="after each submission remove every new pycontain- leftover it "
                            "left (a netns, a link): on a machine used only for grading")
    verbs.add_parser("progress", help="show which lessons' exercises pass on this machine",
                     description="List every lesson with how many of its exercises passed "
                                 "when their checks last ran here (in a notebook, or in the "
                                 "lesson's check cells), the next lesson to take, and its time.")
    return parser


def _progress(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain.course import progress

    print(progress.table())
    return 0


def _grade(args: argparse.Namespace | SimpleNamespace) -> int:
    import json
    from pathlib import Path

    from pycontain.course import grade, report

    limits = grade.GradeLimits(args.timeout, args.memory, args.pids_limit)
    reference = Path(args.notebooks) if args.notebooks else grade.pristine_dir()
    if not any(reference.glob("[0-9][0-9]-*.ipynb")):
        raise SpecError("reference", "a folder of learner notebooks (NN-*.ipynb)",
                        str(reference))
    grade.submissions(args.submissions)  # refuse a bad path before grading anything
    graded = grade.grade(args.submissions, limits, reference=reference, sweep=args.sweep)
    as_json = json.dumps(report.to_json(graded), indent=2) + "\n"
    sys.stdout.write(as_json if args.format == "json" else report.table(graded) + "\n")
    if args.json:
        Path(args.json).write_text(as_json)
    if args.junit:
        Path(args.junit).write_text(report.junit(graded))
    if args.gradescope:
        report.write_gradescope(graded, Path(args.gradescope))
    return 0 if graded and all(s.passed for s in graded) else 1


def _lifecycle_parsers(verbs: Any) -> None:
    """`ps`, `logs`, `stop`, `kill`, `rm`, `inspect`, `pause`, `unpause`: docker's verbs and
    flags, for containers started with `run -d`."""
    ps = verbs.add_parser("ps", help="list containers", description="List the running detached "
                          "containers (-a: every one, the ended ones too), as `docker ps`.")
    ps.add_argument("-a", "--all", action="store_true", help="show ended containers too")
    ps.add_argument("-q", "--quiet", action="store_true", help="print only the ids")
    logs = verbs.add_parser("logs", help="print what a container wrote",
                            description="Print a detached container's stdout (to stdout) and "
                                        "stderr (to stderr), as `docker logs`.")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing what it writes until it ends")
    logs.add_argument("--tail", metavar="N", default="all",
                      help="only the last N lines of each stream (default: all)")
    logs.add_argument("container", metavar="CONTAINER", help="an id, id prefix or name")
    many = "one or more ids, id prefixes or names"
    stop = verbs.add_parser("stop", help="stop containers: SIGTERM, then SIGKILL",
                            description="Send SIGTERM to each container's first process, and "
                                        "SIGKILL when it has not ended after -t seconds, as "
                                        "`docker stop`.")
    stop.add_argument("-t", "--time", metavar="N", default=None,
                      help="seconds to wait before SIGKILL (default: 10)")
    kill = verbs.add_parser("kill", help="send a signal to containers",
                            description="Send a signal (default SIGKILL) to each container's "
                                        "first process, as `docker kill`.")
    kill.add_argument("-s", "--signal", metavar="SIG", default="KILL",
                      help="the signal: KILL, SIGTERM, HUP, 15, ... (default: KILL)")
    rm = verbs.add_parser("rm", help="remove ended containers",
                          description="Remove each container's state and logs, and release "
                                      "what a crashed one left (its cgroup, veth, layer), as "
                                      "`docker rm`. A running one only with -f.")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running one first")
    inspect = verbs.add_parser("inspect", help="print containers' state as JSON",
                               description="Print each container's state file, as it is now "
                                           "(a crashed one shown exited), as a JSON list.")
    pause = verbs.add_parser("pause", help="freeze every process of containers",
                             description="Freeze each container's processes with its cgroup's "
                                         "freezer (lesson 19), as `docker pause`.")
    unpause = verbs.add_parser("unpause", help="thaw paused containers",
                               description="Let each paused container's processes run again.")
    start = verbs.add_parser("start", help="start containers `pycontain create` made",
                             description="Start each created container in the background, "
                                         "with its supervisor, as `docker start`.")
    for verb in (start, stop, kill, rm, inspect, pause, unpause):
        verb.add_argument("containers", metavar="CONTAINER", nargs="+", help=many)
    stats = verbs.add_parser("stats", help="show containers' resource usage, live",
                             description="Show each running detached container's CPU, "
                                         "memory, network, block I/O and process count, read "
                                         "from its cgroup and veth and refreshed every second, "
                                         "as `docker stats`; OOM kills and CPU throttling are "
                                         "printed below the table as they happen.")
    stats.add_argument("--no-stream", action="store_true",
                       help="print one sample and exit (two readings 0.5 s apart)")
    stats.add_argument("--format", choices=("table", "json"), default="table",
                       help="a table (default), or a JSON list per sample")
    stats.add_argument("containers", metavar="CONTAINER", nargs="*",
                       help="ids, id prefixes or names (default: every running one)")
    events = verbs.add_parser("events", help="print containers' events as they happen",
                              description="Print a line for every create, start, pause, "
                                          "unpause, oom, die and destroy of a detached "
                                          "container, as `docker events`, until interrupted "
                                          "or --until.")
    events.add_argument("--since", metavar="TIME",
                        help="also what happened since TIME (seconds since the epoch, 10m "
                             "ago, or 2026-01-31T10:00:00): create, start, die")
    events.add_argument("--until", metavar="TIME", help="stop at TIME (same forms)")


def _exec_parsers(verbs: Any) -> None:
    """`exec` and `top`: docker's grammar, for a running detached container."""
    import argparse

    exec_ = verbs.add_parser(
        "exec", help="run a command in a running container",
        description="Run CMD inside a running detached container, as `docker exec`: in each of "
                    "its namespaces (setns(2)) and its cgroup, with its capabilities, "
                    "no_new_privs and seccomp filter, its environment and working directory.",
        epilog="exit status: the command's own; 125 when pycontain failed (an unknown, stopped "
               "or paused container); 126 when the command could not be executed; 127 when it "
               "was not found; 128+N when it was killed by signal N.\n"
               "example: pycontain exec -it web sh")
    exec_.add_argument("-i", "--interactive", action="store_true",
                       help="keep stdin open (without: /dev/null)")
    exec_.add_argument("-t", "--tty", action="store_true",
                       help="a pseudo-terminal for the command, sized as this one")
    exec_.add_argument("-e", "--env", metavar="K=V", action="append",
                       help="set an environment variable, added to the container's "
                            "(repeatable; K alone: this shell's value)")
    exec_.add_argument("-w", "--workdir", metavar="DIR",
                       help="the working directory inside the container (default: the "
                            "container's)")
    exec_.add_argument("-u", "--user", metavar="UID[:GID]",
                       help="run as this user: numbers, or a name the container's /etc/passwd "
                            "knows (default: the container's)")
    exec_.add_argument("container", metavar="CONTAINER", help="an id, id prefix or name")
    exec_.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD [ARG...]")
    top = verbs.add_parser("top", help="list a container's processes",
                           description="List the processes of a running container as the host "
                                       "sees them (its cgroup's cgroup.procs), as `docker top`.")
    top.add_argument("container", metavar="CONTAINER", help="an id, id prefix or name")


def _exec(args: argparse.Namespace | SimpleNamespace) -> int:
    """Ask the container's supervisor to exec the command (pycontain.exec_socket), with this
    process's stdin (with -i), stdout and stderr, or a pty whose other end is relayed here."""
    from pycontain import exec_socket

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise SpecError("command", "one or more words after CONTAINER, as in "
                                   "`pycontain exec web ls /`", "")
    if args.tty:
        from pycontain import terminal

        terminal.require(args.interactive, args.tty)
    what = {"argv": command, "env": environment_variables(args.env or []),
            "cwd": None if args.workdir is None else workdir(args.workdir), "user": args.user,
            "tty": bool(args.tty)}
    sock = exec_socket.connect(args.container)
    if not args.tty:
        stdin = 0 if args.interactive else os.open(os.devnull, os.O_RDONLY)  # docker's: no -i,
        try:                                                                 # nothing to read
            exec_socket.request(sock, args.container, what, [stdin, 1, 2])
        finally:
            if stdin != 0:
                os.close(stdin)
        return exec_socket.wait(sock, args.container)
    master, slave = terminal.open_pty()
    try:
        exec_socket.request(sock, args.container, what, [slave])
    finally:
        os.close(slave)
    try:
        terminal.relay(master, args.interactive)
    finally:
        os.close(master)
    return exec_socket.wait(sock, args.container)


def _top(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import supervisor
    from pycontain.observe import top

    print(top.table(supervisor.running(args.container, "show its processes")))
    return 0


def _nearest(word: str, flags: list[str]) -> str:
    """A hint naming the flag nearest to a mistyped one, or "".

    >>> _nearest("--hostnme=box", ["-h", "--help", "--hostname"])
    '\\n  hint: did you mean --hostname?'
    """
    import difflib

    close = difflib.get_close_matches(word.partition("=")[0], flags, n=1)
    return f"\n  hint: did you mean {close[0]}?" if close and word.startswith("-") else ""


def _argparse_args(words: list[str]) -> argparse.Namespace:
    """`words` parsed by argparse; a `run` command without the `--` that ends the options."""
    args = _parser().parse_args(words)
    if args.verb in ("run", "create", "audit") and args.command[:1] == ["--"]:
        args.command = args.command[1:]
    return args


def _quick_run_args(argv: list[str]) -> SimpleNamespace | None:
    """`pycontain run [OPTION VALUE | FLAG]... -- CMD...` parsed without argparse, or None.

    Importing argparse and building its parser cost ~10 ms here, a third of the command's start-up
    (bench/start_latency.py): more than the kernel takes to build the container. So the common
    form is parsed by hand from `RUN_OPTIONS`; anything else (help, a typo, another verb, a
    value that starts with `-`) returns None and goes to argparse, which also writes every error
    and help message. So the two agree: this gives argparse's result or none
    (tests/unit/test_cli.py feeds both the same words).

    >>> vars(_quick_run_args(["run", "--hostname=box", "--namespaces", "uts", "--", "true"]))
    ... # doctest: +ELLIPSIS
    {'verb': 'run', 'hostname': 'box', 'namespaces': 'uts', 'rootfs': None, 'map_root': None, ...}
    >>> _quick_run_args(["run", "--pids-limit", "20", "--memory=32M", "--", "true"]).pids_limit
    '20'
    >>> _quick_run_args(["run", "--init", "--namespaces", "pid,mnt", "--", "true"]).init
    True
    >>> _quick_run_args(["run", "--hostnme", "box", "--", "true"]) is None
    True
    """
    if argv[:1] != ["run"] or "--" not in argv:
        return None
    end = argv.index("--")
    known = BASE_RUN_OPTIONS  # run_options() once a word is none of these: a limit, or a typo
    options: dict[str, object] = dict.fromkeys(name[2:].replace("-", "_") for name in known)
    options.update(dict.fromkeys((name[2:].replace("-", "_") for name in RUN_FLAGS), False))
    words = argv[1:end]
    longs = {short: long for long, short in RUN_SHORT.items()}
    while words:
        if longs.get(words[0], words[0]) in RUN_FLAGS:
            options[longs.get(words[0], words[0])[2:].replace("-", "_")] = True
            words.pop(0)
            continue
        flag, equals, value = words.pop(0).partition("=")
        flag = longs.get(flag, flag)
        if flag not in known and known is BASE_RUN_OPTIONS:
            known = run_options()
            options = {**dict.fromkeys(name[2:].replace("-", "_") for name in known), **options}
        if flag not in known or not (equals or words[:1] and words[0][:1] != "-"):
            return None  # argparse decides: `--hostname --init` lacks a value, `-3600` is one
        if equals and value == "--":
            return None  # argparse decides: Python 3.11's takes `--hostname=--` for no value
        name, value = flag[2:].replace("-", "_"), value if equals else words.pop(0)
        if flag in RUN_REPEATED:
            options[name] = [*(options[name] or []), value]  # type: ignore[misc]
        else:
            options[name] = value
    return SimpleNamespace(verb="run", **options, command=argv[end + 1:])


#: the lifecycle verbs the quick parser reads (`_quick_verb_args`), as argparse declares them:
#: verb -> (flags without a value: spellings -> dest, options with one: spellings -> (dest,
#: repeated), the positionals: their dests, the last one taking every word left)
QUICK_VERBS: dict[str, tuple[dict[str, str], dict[str, tuple[str, bool]], tuple[str, ...]]] = {
    "exec": ({"-i": "interactive", "--interactive": "interactive", "-t": "tty", "--tty": "tty"},
             {"-e": ("env", True), "--env": ("env", True), "-w": ("workdir", False),
              "--workdir": ("workdir", False), "-u": ("user", False), "--user": ("user", False)},
             ("container", "command")),
    "rm": ({"-f": "force", "--force": "force"}, {}, ("containers",)),
}


def _quick_verb_args(argv: list[str]) -> SimpleNamespace | None:
    """`exec` and `rm` as argparse would read them, without argparse: importing it and
    building every verb's parser costs more than runc takes to exec a process. Only the plain
    forms (`exec -i -e K=V ID CMD...`, `rm -f ID...`); anything else (help, `-it`, a flag
    after the containers, a word it does not know) is None, left to argparse
    (tests/unit/test_cli.py feeds both the same words).

    >>> vars(_quick_verb_args(["exec", "-e", "A=1", "web", "ls", "-l"]))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'verb': 'exec', 'interactive': False, 'tty': False, 'env': ['A=1'], 'workdir': None,
     'user': None, 'container': 'web', 'command': ['ls', '-l']}
    >>> _quick_verb_args(["rm", "-f", "web", "db"]).containers
    ['web', 'db']
    >>> _quick_verb_args(["exec", "-it", "web", "sh"]) is None
    True
    """
    if argv[:1] not in ([verb] for verb in QUICK_VERBS):
        return None
    flags, options, positionals = QUICK_VERBS[argv[0]]
    found: dict[str, object] = {"verb": argv[0], **dict.fromkeys(flags.values(), False),
                                **{dest: None for dest, _ in options.values()}}
    words = argv[1:]
    while words and words[0].startswith("-"):
        flag, equals, value = words.pop(0).partition("=")
        if flag in flags and not equals:
            found[flags[flag]] = True
        elif flag in options and (equals and flag.startswith("--") or not equals and words
                                  and not words[0].startswith("-")):
            dest, repeated = options[flag]
            value = value if equals else words.pop(0)
            found[dest] = [*(found[dest] or []), value] if repeated else value  # type: ignore
        else:
            return None  # --help, -it, -eK=V, `--`, a value that looks like a flag: argparse
    if argv[0] == "exec":
        if not words or "--" in words:  # where argparse drops a `--` depends on its version
            return None
        found["container"], found["command"] = words[0], words[1:]
    else:
        if not words or any(w.startswith("-") for w in words):
            return None
        found[positionals[0]] = words
    return SimpleNamespace(**found)


def _user_options(user_namespace: bool, map_root: str | None) -> dict[str, Any]:
    """`--user-namespace` / `--map-root UID` as Spec options (lesson 09).

    >>> _user_options(False, "200000")
    {'user_namespace': True, 'uid_map': [(0, 200000, 65536)]}
    """
    if map_root is None:
        return {"user_namespace": True} if user_namespace else {}
    from pycontain.errors import SpecError

    if not map_root.isdigit():
        raise SpecError("uid_map", "a uid outside, such as 100000", map_root)
    count = 65536 if os.geteuid() == 0 else 1
    if count == 1 and int(map_root) != os.geteuid():
        raise SpecError("uid_map", f"your own uid, {os.geteuid()}, when not root", map_root,
                        hint="without root, the kernel lets a process map only its own uid, "
                             "once (lesson 09)")
    return {"user_namespace": True, "uid_map": [(0, int(map_root), count)]}


def _limit_options(args: argparse.Namespace | SimpleNamespace) -> dict[str, Any]:
    """The limits' flags given (`--memory 64M`) as Spec options (`memory_max="64M"`)."""
    if "limits" not in _TABLES:  # never read in this process, so no limit flag was parsed
        return {}  # (the quick parser's namespace has no limits' names unless one was given)
    return {name: value for flag, name in limit_flags().items()
            if (value := getattr(args, flag[2:].replace("-", "_"), None)) is not None}


def _time_options(time_namespace: bool, boottime: str | None,
                  monotonic: str | None) -> dict[str, Any]:
    """`--time-namespace`, `--boottime-offset S`, `--monotonic-offset S` as Spec options
    (lesson 11): an offset implies the time namespace; Spec checks the offsets' range.

    >>> _time_options(False, "86400", None)
    {'time_namespace': True, 'time_offsets': {'boottime': 86400.0}}
    """
    offsets = {}
    for clock, given in (("boottime", boottime), ("monotonic", monotonic)):
        if given is None:
            continue
        try:
            offsets[clock] = float(given)
        except ValueError:
            raise SpecError(f"time_offsets[{clock!r}]", "a number of seconds, such as 86400 or "
                            "-3600",
                            given) from None
    if not (offsets or time_namespace):
        return {}
    return {"time_namespace": True, "time_offsets": offsets or None}


def _security_options(privileged: bool, cap_add: list[str] | None, cap_drop: list[str] | None,
                      security_opt: list[str] | None, mounts: bool) -> dict[str, Any]:
    """`--privileged`, `--cap-add`, `--cap-drop`, `--security-opt` as Spec options: by default
    Docker's capabilities without CAP_MKNOD, no_new_privs (lesson 20), pycontain's
    seccomp profile (lesson 21) and, with a mount namespace (`mounts`), runc's masked and
    read-only paths; --privileged, none of them.

    >>> sorted(_security_options(True, None, None, None, True).items())
    ... # doctest: +NORMALIZE_WHITESPACE
    [('capabilities', None), ('masked_paths', ()), ('no_new_privs', False),
     ('readonly_paths', ()), ('seccomp', None)]
    >>> sorted(_security_options(False, None, ["ALL"], ["no-new-privileges=false",
    ...        "seccomp=unconfined", "systempaths=unconfined"], True).items())
    ... # doctest: +NORMALIZE_WHITESPACE
    [('capabilities', frozenset()), ('masked_paths', ()), ('no_new_privs', False),
     ('readonly_paths', ()), ('seccomp', 'unconfined')]
    """
    no_new_privs = not privileged
    seccomp: str | None = None if privileged else "default"
    system_paths = mounts and not privileged
    for value in security_opt or ():
        key, equals, setting = value.partition("=")
        if key == "no-new-privileges" and setting in (("true", "false") if equals else ("",)):
            no_new_privs = setting != "false"
        elif key == "seccomp" and setting:
            seccomp = setting
        elif key == "systempaths" and setting == "unconfined":
            system_paths = False
        else:
            raise SpecError("no_new_privs", "no-new-privileges, no-new-privileges=true, "
                            "no-new-privileges=false, seccomp=unconfined, seccomp=FILE "
                            "(a profile in Docker's JSON format) or systempaths=unconfined",
                            value)
    from pycontain.security import paths

    hidden = {"masked_paths": paths.MASKED if system_paths else (),
              "readonly_paths": paths.READ_ONLY if system_paths else ()}
    if privileged:
        for parameter, given in (("capabilities['add']", cap_add),
                                 ("capabilities['drop']", cap_drop)):
            if given:
                raise SpecError(parameter, "left out with --privileged, which keeps every "
                                "capability", ",".join(given))
        return {"capabilities": None, "no_new_privs": no_new_privs, "seccomp": seccomp,
                **hidden}
    from pycontain.security import capabilities

    return {"capabilities": capabilities.resolve(cap_add or (), cap_drop or ()),
            "no_new_privs": no_new_privs, "seccomp": seccomp, **hidden}


def _run(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import runtime

    if not args.command:
        raise SpecError("command", "one or more words, as in `pycontain run -- hostname`", "")
    if args.name is not None and not args.detach:  # --rm is what a foreground run does anyway
        raise SpecError("name", "used only with -d: a container in the foreground leaves no "
                                "state to find it by", args.name)
    if args.detach and (args.tty or args.interactive):
        raise SpecError("tty" if args.tty else "interactive", "used only without -d: a "
                        "detached container's stdin is /dev/null and its output goes to its "
                        "logs", "-t" if args.tty else "-i",
                        hint="`pycontain exec -it CONTAINER sh` opens a terminal in it later")
    if args.tty:
        from pycontain import terminal

        terminal.require(args.interactive, args.tty)
    if args.detach and os.geteuid() != 0:
        from pycontain.errors import PreflightError

        raise PreflightError("a detached container needs root: its cgroup, and its state in "
                             "/run/pycontain", hint="run it as root (`sudo`), or without -d "
                                                    "(lesson 09)")
    container_id = runtime.new_id()
    spec = _spec(args, container_id)
    if args.detach:
        return _run_detached(args, spec, container_id)
    # This process is single-threaded, so init can run in a fork of it instead of a second
    # interpreter that imports pycontain again (DESIGN, "The process model"). runc (the goal)
    # starts `/bin/true` in ~25 ms; a second interpreter alone costs ~20 ms here.
    if not args.tty:
        return _foreground(runtime.spawn_forked(spec, container_id=container_id))
    from pycontain import terminal

    master, slave = terminal.open_pty()
    try:
        container = runtime.spawn_forked(
            spec, container_id=container_id,
            in_child=lambda: terminal.take(slave))
    finally:
        os.close(slave)
    try:
        terminal.relay(master, args.interactive)
    finally:
        os.close(master)
    return _foreground(container)


def _audit(args: argparse.Namespace | SimpleNamespace) -> int:
    """`pycontain audit [RUN OPTIONS]`: the probe as the command (audit.probe; lesson 23,
    coming)."""
    from pycontain import runtime
    from pycontain.audit import probe

    if args.command:
        raise SpecError("command", "nothing after the options: the audit runs its own probe",
                        " ".join(args.command))
    for flag in ("detach", "interactive", "tty", "rm", "name"):
        if getattr(args, flag):
            raise SpecError(flag, "used only with `pycontain run`: the audit runs in the "
                            "foreground and keeps nothing", flag_of().get(flag, f"--{flag}"))
    with probe.scratch(args.rootfs) as where:
        args.command = probe.argv(where)
        report = probe.audit(_spec(args, runtime.new_id()))
    print(report.json_lines() if args.json else report, end="" if args.json else "\n")
    return 0 if report.green else 1


def _spec(args: argparse.Namespace | SimpleNamespace, container_id: str) -> Any:
    """The Spec that `run`'s flags ask for, for the container `container_id`."""
    from pycontain import runtime
    from pycontain.spec import namespace_set

    names = namespace_set(args.namespaces)
    hostname = args.hostname  # Docker's default: the short id, in a UTS namespace of its own
    if hostname is None and "uts" in names:
        hostname = container_id[:12]
    return runtime.Spec(args.command, namespaces=args.namespaces, hostname=hostname,
                        rootfs=args.rootfs, init=args.init, read_only=args.read_only,
                        cgroup_view=bool(args.rootfs) and not (args.no_cgroup_view
                                                               or args.privileged),
                        overlay=bool(args.rootfs) and not args.no_overlay,
                        **(_limit_options(args) or _detached_cgroup(args.detach)),
                        network=args.network, publish=args.publish or (), trace=args.trace,
                        egress_rate=args.egress_rate, ingress_rate=args.ingress_rate,
                        **_user_options(args.user_namespace, args.map_root),
                        **_time_options(args.time_namespace, args.boottime_offset,
                                        args.monotonic_offset),
                        **_security_options(args.privileged, args.cap_add, args.cap_drop,
                                            args.security_opt, "mnt" in names),
                        **_process_options(args, hostname))


def _process_options(args: argparse.Namespace | SimpleNamespace,
                     hostname: str | None) -> dict[str, Any]:
    """`-e`, `--env-file`, `-w`, `-u`, `-v` as Spec options (env added to the default one, as
    Docker's is); none, and nothing imported, when none is given."""
    options: dict[str, Any] = {}
    if args.env or args.env_file:
        from pycontain.spec import default_environment

        options["env"] = {**default_environment(hostname),
                          **environment(args.env_file or [], args.env or [])}
    if args.workdir is not None:
        options["cwd"] = workdir(args.workdir)
    if args.user is not None:
        options["user"] = args.user
    if args.volume:
        options["volumes"] = args.volume
    return options


def workdir(given: str) -> str:
    """`-w DIR`: an absolute path inside the container."""
    if not given.startswith("/"):
        raise SpecError("cwd", "an absolute path inside the container, such as /srv", given)
    return given


def environment_variables(words: list[str], parameter: str = "env",
                          host: dict[str, str] | None = None) -> dict[str, str]:
    """`-e K=V` and `-e K` as docker reads them: K=V sets K (V may hold '='), K alone takes the
    value K has here, and is left out when it has none.

    >>> environment_variables(["A=1", "B=x=y", "HOME", "NOPE"], host={"HOME": "/root"})
    {'A': '1', 'B': 'x=y', 'HOME': '/root'}
    >>> environment_variables(["=1"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `env` must be K=V or K, a name without spaces before ..., got '=1'
    """
    host = dict(os.environ) if host is None else host
    found = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not name or any(c.isspace() for c in name) or "\0" in word:
            raise SpecError(parameter, "K=V or K, a name without spaces before any '='", word)
        if equals:
            found[name] = value
        elif name in host:
            found[name] = host[name]
    return found


def env_file_words(text: str) -> list[str]:
    """The variables of an env file (docker's --env-file): one K=V or K a line, leading
    spaces ignored, blank lines and `#` comments skipped, no quotes removed.

    >>> env_file_words("# db\\nUSER=app\\n\\n  PASS='x y'\\nHOME\\n")
    ['USER=app', "PASS='x y'", 'HOME']
    """
    return [line.lstrip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def environment(env_files: list[str], words: list[str]) -> dict[str, str]:
    """What `--env-file FILE...` and `-e K=V...` set, the files first, `-e` winning."""
    found: dict[str, str] = {}
    for path in env_files:
        try:
            with open(path) as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError("env_file", "a readable file of K=V lines", path,
                            hint=getattr(e, "strerror", None) or str(e)) from None
        found.update(environment_variables(env_file_words(text), "env_file"))
    return {**found, **environment_variables(words)}


def _foreground(container: Any) -> int:
    """Wait for a container in the foreground, forwarding the signals a user sends."""
    interrupts = 0

    def forward(signum: int, _frame: FrameType | None) -> None:
        # A PID 1 without a handler ignores SIGINT and SIGTERM (lesson 03): the second Ctrl-C
        # kills, so nobody is ever stuck.
        nonlocal interrupts
        interrupts += signum == signal.SIGINT
        if interrupts >= 2:
            container.kill()
            return
        container.signal(signum)
        if signum == signal.SIGINT:
            print("pycontain: sent SIGINT to the container; Ctrl-C again kills it",
                  file=sys.stderr)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    result = container.wait()
    if result.oom_kills:  # the one ending a user cannot tell from the exit status alone
        print(f"pycontain: the container was {result.reason}", file=sys.stderr)
    return result.status


def _detached_cgroup(detach: bool) -> dict[str, str]:
    """A detached container always gets a cgroup, as Docker's do: `pause` needs its freezer,
    `rm` kills what is left in it. Without a limit, one that limits nothing."""
    return {"pids_max": "max"} if detach else {}


def _run_detached(args: argparse.Namespace | SimpleNamespace, spec: Any,
                  container_id: str) -> int:
    from pycontain import lab, state, supervisor

    lab.require_ready(user_namespace="user" in spec.namespaces)  # before anything is made
    given = {key: value for key, value in sorted(vars(args).items())
             if key not in ("verb", "command", "words") and value not in (None, False, [])}
    fields = {"image": args.rootfs, "command": list(args.command), "options": given}
    if args.verb == "create":  # its words, to build the same Spec again at `start`
        state.create(container_id, args.name, remove=args.rm, supervisor=None,
                     words=args.words[1:], **fields)
    else:
        supervisor.start(spec, container_id, args.name, remove=args.rm, **fields)
    print(container_id)
    return 0


def _create(args: argparse.Namespace | SimpleNamespace) -> int:
    args.detach = True
    return _run(args)


def _start(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import state, supervisor

    def start(reference: str) -> None:
        container_id = state.find(reference)
        record = state.claim(container_id)
        try:
            words = _argparse_args(["run", "-d", *record["words"]])
            spec = _spec(words, container_id)
        except BaseException:  # the rootfs went since `create`, say: it may be started later
            state.update(container_id, supervisor=None)
            raise
        supervisor.launch(spec, container_id)

    return _each(args, start)


def _ago(seconds: float) -> str:
    """How docker says how long ago, or how long for.

    >>> [_ago(s) for s in (0.4, 5, 70, 300, 4000, 90000, 300000)]
    ... # doctest: +NORMALIZE_WHITESPACE
    ['Less than a second', '5 seconds', 'About a minute', '5 minutes', 'About an hour',
     '25 hours', '3 days']
    """
    for unit, size, about in (("day", 86400 * 2, None), ("hour", 3600, "an hour"),
                              ("minute", 60, "a minute"), ("second", 1, None)):
        if seconds >= size or unit == "second":
            count = int(seconds // (size if unit != "day" else 86400))
            if count < 1:
                return "Less than a second"
            if count == 1 and about:
                return f"About {about}"
            return f"{count} {unit}{'s' if count != 1 else ''}"
    raise AssertionError("unreachable")


def ps_table(records: list[dict[str, Any]], now: float) -> str:
    """`docker ps`'s table of containers' states (`state.current()`).

    >>> print(ps_table([{"id": "ab" * 32, "image": None, "command": ["sleep", "60"],
    ...                  "created": 0, "started": 0, "status": "running", "finished": None,
    ...                  "exit_code": None, "network": {"publish": [[8080, 80, "tcp"]]},
    ...                  "name": "web"}], now=5))  # doctest: +NORMALIZE_WHITESPACE
    CONTAINER ID   IMAGE   COMMAND      CREATED         STATUS         PORTS                  NAMES
    abababababab   -       "sleep 60"   5 seconds ago   Up 5 seconds   0.0.0.0:8080->80/tcp   web
    """
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")]
    for r in records:
        command = " ".join(r.get("command") or [])
        command = command if len(command) <= 20 else command[:19] + "…"
        up = f"Up {_ago(now - (now if r['started'] is None else r['started']))}"
        status = {"created": "Created", "running": up,
                  "paused": f"{up} (Paused)"}.get(r["status"])
        if status is None:
            code = "?" if r.get("exit_code") is None else r["exit_code"]
            since = f" {_ago(now - r['finished'])} ago" if r.get("finished") else ""
            status = f"Exited ({code}){since}" + (f": {r['crashed']}" if "crashed" in r else "")
        ports = ", ".join(f"0.0.0.0:{host}->{inside}/{protocol}" for host, inside, protocol
                          in ((r.get("network") or {}).get("publish") or ())
                          if r["status"] in ("running", "paused"))
        rows.append((r["id"][:12], r.get("image") or "-", f'"{command}"',
                     f"{_ago(now - r['created'])} ago", status, ports, r.get("name") or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def _ps(args: argparse.Namespace | SimpleNamespace) -> int:
    import time

    from pycontain import state

    records = [state.current(state.read(i)) for i in state.ids()]
    shown = [r for r in records if args.all or r["status"] in ("running", "paused")]
    if args.quiet:
        print("\n".join(r["id"][:12] for r in shown) if shown else "", end="\n" * bool(shown))
    else:
        print(ps_table(shown, time.time()))
    return 0


def _logs(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import supervisor

    tail = None if args.tail == "all" else args.tail
    if tail is not None and not tail.isdigit():
        raise SpecError("tail", "a number of lines, or all", args.tail)
    for stream, data in supervisor.logs(args.container, follow=args.follow,
                                        tail=None if tail is None else int(tail)):
        out = sys.stdout if stream == "stdout" else sys.stderr
        out.flush()
        out.buffer.write(data)
        out.buffer.flush()
    return 0


def _signal_number(given: str) -> int:
    """`-s`'s signal: a name with or without SIG, any case, or a number.

    >>> _signal_number("term"), _signal_number("SIGHUP"), _signal_number("9")
    (15, 1, 9)
    """
    import signal  # the enums, for their names

    if given.isdigit() and int(given) in {s.value for s in signal.Signals}:
        return int(given)
    name = given.upper()
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        raise SpecError("signal", "a signal name or number, such as KILL, SIGTERM, HUP or 15",
                        given) from None


def _each(args: argparse.Namespace | SimpleNamespace, act: Callable[[str], object]) -> int:
    """Do `act` to every container named, as docker does: print each name done, report each
    failure and go on; then exit with the last failure's status (125)."""
    code = 0
    for reference in args.containers:
        try:
            act(reference)
            print(reference)
        except PycontainError as exc:
            print(f"pycontain: {format_error(exc, flag_of())}", file=sys.stderr)
            code = exit_status(exc)
    return code


def _stop(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import supervisor

    if args.time is not None and not args.time.isdigit():
        raise SpecError("time", "a whole number of seconds, such as 0 or 10", args.time)
    wait_s = supervisor.STOP_TIMEOUT_S if args.time is None else int(args.time)
    return _each(args, lambda reference: supervisor.stop(reference, wait_s))


def _kill(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import supervisor

    number = _signal_number(args.signal)
    return _each(args, lambda reference: supervisor.kill(reference, number))


def _rm(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import supervisor

    return _each(args, lambda reference: supervisor.rm(reference, force=args.force))


def _pause(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import supervisor

    return _each(args, supervisor.pause if args.verb == "pause" else supervisor.unpause)


def _inspect(args: argparse.Namespace | SimpleNamespace) -> int:
    import json

    from pycontain import state

    found = []
    for reference in args.containers:  # all or nothing: the output is one JSON document
        found.append(state.current(state.read(state.find(reference))))
    print(json.dumps(found, indent=4))
    return 0


def _stats(args: argparse.Namespace | SimpleNamespace) -> int:
    import json
    import time

    from pycontain.observe import stats

    def show(usages: list[Any]) -> None:
        if args.format == "json":
            print(json.dumps(stats.to_json(usages)), flush=True)
        else:
            print(stats.table(usages), flush=True)

    if args.no_stream:
        show(stats.sample(args.containers))
        return 0
    clear = "\x1b[2J\x1b[H" if sys.stdout.isatty() and args.format == "table" else ""
    with stats.Sampler(args.containers) as sampler:
        sampler.read()
        previous: list[Any] = []
        due = time.monotonic()
        while True:
            due += 1.0  # once a second, on a fixed clock
            time.sleep(max(0.0, due - time.monotonic()))
            usages = sampler.next()
            print(clear, end="")
            show(usages)
            for line in stats.changes(previous, usages):
                print(f"pycontain: {line}", flush=True)
            previous = usages


def _events(args: argparse.Namespace | SimpleNamespace) -> int:
    import time

    from pycontain.observe import container_events

    now = time.time()
    since, until = (None if given is None else container_events.parse_time(given, name, now)
                    for name, given in (("since", args.since), ("until", args.until)))
    for event in container_events.stream(since, until):
        print(event.line(), flush=True)
    return 0


def _rootfs(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain.fs import rootfs

    path = rootfs.default_path()
    if args.rebuild or args.host_binaries:
        rootfs.build(path, use_busybox=not args.host_binaries)
    else:
        found = rootfs.status(path)
        if found.state == "stale":  # one line on stderr: `$(pycontain rootfs)` reads stdout
            print(f"pycontain: rebuilding the embedded rootfs at {path}: {found.why}",
                  file=sys.stderr)
        rootfs.ensure(path)
    print(path)
    return 0


def _doctor(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import lab

    checks = lab.preflight()
    print(lab.render(checks))
    return 0 if lab.ready(checks) else 1


def _cleanup(args: argparse.Namespace | SimpleNamespace) -> int:
    from pycontain import lab

    report = lab.sweep_orphans() if args.orphans else lab.sweep()
    print("\n".join(report) if report else "nothing to clean up")
    return 1 if any(line.startswith("could not") for line in report) else 0


#: what each verb is doing, for the report of an internal error
DOING = {"run": "running the container", "rootfs": "preparing the embedded rootfs",
         "doctor": "checking this machine", "cleanup": "removing pycontain- leftovers",
         "grade": "grading notebooks", "progress": "reading the progress",
         "create": "creating the container",
         "start": "starting containers",
         "ps": "listing containers", "logs": "reading the container's logs",
         "stop": "stopping containers", "kill": "signalling containers",
         "rm": "removing containers", "inspect": "reading containers' state",
         "pause": "pausing containers", "unpause": "unpausing containers",
         "exec": "running a command in the container", "top": "listing its processes",
         "stats": "reading containers' usage", "events": "watching containers",
         "audit": "auditing the container"}


def _internal_error(exc: BaseException, doing: str) -> int:
    """Report a bug (an exception pycontain did not raise on purpose) in one line and a hint;
    the traceback only with $PYCONTAIN_DEBUG=1. Returns the exit status, 125."""
    from pycontain import settings

    if settings.debug():
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
        hint = "the traceback above says where; please report it with the command you ran"
    else:
        hint = (f"this is a bug in pycontain, not in your command; run it again with "
                f"{settings.DEBUG_VARIABLE}=1 to see the traceback, and please report it")
    print(f"pycontain: internal error while {doing}: {type(exc).__name__}: {exc}\n"
          f"  hint: {hint}", file=sys.stderr)
    return EXIT_RUNTIME_ERROR


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A warning as one line (`pycontain: warning: Failed to …, ignoring`), no source line."""
    print(f"pycontain: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    import warnings  # loaded at every interpreter's start-up: free

    words = sys.argv[1:] if argv is None else argv
    doing = "reading the command line"
    showwarning, warnings.showwarning = warnings.showwarning, _warning_line
    args = None
    try:
        args = _quick_run_args(words) or _quick_verb_args(words) or _argparse_args(words)
        args.words = words  # `create` keeps them for `start`
        doing = DOING[args.verb]
        verb = {"run": _run, "rootfs": _rootfs, "doctor": _doctor, "cleanup": _cleanup,
                "grade": _grade, "create": _create, "start": _start, "ps": _ps, "logs": _logs,
                "progress": _progress,
                "stop": _stop, "kill": _kill, "rm": _rm,
                "inspect": _inspect, "pause": _pause, "unpause": _pause,
                "exec": _exec, "top": _top, "stats": _stats, "events": _events,
                "audit": _audit}[args.verb]
        code = verb(args)
    except PycontainError as exc:
        flags = GRADE_FLAG_OF if getattr(args, "verb", "") == "grade" else flag_of()
        print(f"pycontain: {format_error(exc, flags)}", file=sys.stderr)  # flags, not Python
        code = exit_status(exc)
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except Exception as exc:  # a bug: one line, what was being done, how to see the details
        code = _internal_error(exc, doing)
    finally:
        warnings.showwarning = showwarning
    sys.stdout.flush()
    if argv is None:  # the `pycontain` program itself, not a caller such as a test
        # Skip the interpreter's tear-down (clearing every module, a last garbage collection):
        # it takes ~10 ms here, longer than a container runs `/bin/true`. What must still happen
        # does: the exit handlers (coverage, logging) run, and the output is flushed.
        sys.stderr.flush()
        atexit._run_exitfuncs()
        os._exit(code)
    sys.exit(code)
