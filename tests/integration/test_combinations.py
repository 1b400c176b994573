"""Every combination of the eight namespaces, as `pycontain run` runs it (issue: all eight at once
failed with an internal error, and no test tried the combinations).

Each of the 256 sets of namespaces runs `/bin/true`, without and with `--rootfs`, and a sample
of them with limits and with the bridge network. On cgroup v2 (the lab VM's system, and the
guest of `make test-cgroup2`, where the 512 runs took up to 13 minutes of emulation) only what
v2 changes: the read-only cgroup2 view mounted at /sys/fs/cgroup in a container with a rootfs
(lesson 20), so only the runs with a rootfs, and of the namespaces that have nothing to do with
that view (ipc, net, time, uts) all or none; the v1 host runs every set both ways.

Each run either exits 0 or is refused before anything is created, with one line naming the flag
and a hint: never an internal error, never a traceback, never a leftover. The runs go four at a
time: they are independent containers.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from pycontain import cgroups, lab

from .conftest import run_cli

NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
SETS = [names for size in range(len(NAMESPACES) + 1)
        for names in itertools.combinations(NAMESPACES, size)]
#: the sampled dimension: options that combine with the namespaces (add new ones here: cpu and
#: io limits, seccomp); every run without --privileged has the default capabilities
SAMPLED = {
    "limits": ["--memory", "64M", "--pids-limit", "64"],
    "bridge": ["--network", "bridge"],
    "init": ["--init"],
    "hostname": ["--hostname", "combo"],
    "capabilities": ["--cap-drop", "ALL", "--cap-add", "SYS_ADMIN,net_admin"],
    "privileged": ["--privileged", "--security-opt", "no-new-privileges"],
}
EVERY = 9  # one set in EVERY gets each sampled option (a different set for each)


#: on cgroup v2, the namespaces taken all or none (module docstring)
BESIDE_THE_VIEW = {"ipc", "net", "time", "uts"}


def runs(rootfs: str) -> list[tuple[str, list[str]]]:
    every = cgroups.detect().mode != "v2"  # module docstring
    sets = [names for names in SETS
            if every or len(BESIDE_THE_VIEW & set(names)) in (0, len(BESIDE_THE_VIEW))]
    found = []
    for index, names in enumerate(sets):
        base = ["run", "--namespaces", ",".join(names)]
        if every:
            found.append((f"{','.join(names) or '(none)'}", [*base, "--", "true"]))
        found.append((f"{','.join(names) or '(none)'} +rootfs",
                      [*base, "--rootfs", rootfs, "--", "/bin/true"]))
        for offset, (option, args) in enumerate(SAMPLED.items()):
            if option == "bridge" and shutil.which("nft") is None:
                continue
            if index % EVERY == offset:
                found.append((f"{','.join(names) or '(none)'} +{option}",
                              [*base, *args, "--", "true"]))
    return found


def verdict(args: list[str]) -> tuple[str, str]:
    """'ran', 'refused' (with the reason) or 'broken' (with what was printed)."""
    try:  # four at once, and a bridge's set-up and tear-down take their turns: minutes on TCG
        done = run_cli(*args, timeout=240)
    except subprocess.TimeoutExpired:
        return "broken", "not ended after 240 s"
    err = done.stderr.strip()
    if done.returncode == 0:
        return "ran", ""
    lines = err.splitlines()
    first = lines[0] if lines else ""
    refused = (done.returncode == 125 and first.startswith("pycontain: ")
               and ("--" in first or " -p " in first) and "internal error" not in err
               and "Traceback" not in err and any(line.lstrip().startswith("hint:")
                                                  for line in lines))
    return ("refused", first) if refused else ("broken", f"exit {done.returncode}: {err[-400:]}")


def test_every_set_of_namespaces_runs_or_is_refused_by_its_flag(embedded_rootfs):
    before = set(lab.leftovers())
    todo = runs(embedded_rootfs)
    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = list(pool.map(lambda run: verdict(run[1]), todo))
    counts = Counter(kind for kind, _ in verdicts)
    reasons = Counter(why.split(":", 1)[1].split(", got ")[0].strip()
                      for kind, why in verdicts if kind == "refused")
    print(f"\n{len(todo)} runs: {dict(counts)}")
    for why, n in reasons.most_common():
        print(f"  refused {n}x: {why}")
    broken = [f"{name}: {why}" for (name, _), (kind, why) in zip(todo, verdicts, strict=True)
              if kind == "broken"]
    assert broken == [], f"{len(broken)} of {len(todo)} runs broke:\n" + "\n".join(broken[:20])
    assert counts["ran"] > len(todo) // 2  # most sets run: refusals are the exception
    assert set(lab.leftovers()) - before == set()


def test_all_eight_at_once_run_in_a_rootfs(embedded_rootfs):
    done = run_cli("run", "--namespaces", ",".join(NAMESPACES), "--rootfs", embedded_rootfs,
                   "--", "/bin/true")
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize("args", [
    ["--user-namespace", "--time-namespace", "--", "true"],
    ["--map-root", "100000", "--boottime-offset", "10", "--", "cat", "/proc/uptime"],
])
def test_a_user_namespace_with_a_time_namespace(args):
    done = run_cli("run", *args)
    assert (done.returncode, done.stderr) == (0, "")
