"""A controller is one module: what it declares reaches Limits, Spec, run() and `pycontain run`.

A throw-away stub controller (a made-up `stub.weight`, never written anywhere) is registered the way
a real one is, one entry in `cgroups.controllers.MODULES`, in a fresh interpreter before the
rest of pycontain is imported; no other file knows it. Its field must then be a field of
`Limits`, a keyword option of `Spec` and `run()`, and a flag of both `pycontain run` parsers,
named by its errors.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pycontain.cgroups import controllers
from pycontain.cgroups.limits import FIELDS, Limits
from pycontain.errors import SpecError

REGISTER_A_STUB = """
import types
from pycontain.cgroups import controllers
from pycontain.cgroups.controllers.field import Field, count

stub = types.ModuleType("stub")
stub.FILES = {"stub.weight": "stub.shares"}
stub.FIELDS = (Field("stub_weight", "stub.weight", count("shares"), flag="--stub-weight",
                     metavar="WEIGHT", help="stub.weight: the stub's share of the CPU",
                     doc="stub.weight, a stub", lesson=15),)
stub.to_v1 = lambda settings: [("stub.shares", value) for value in settings.values()]
controllers.MODULES["stub"] = stub
"""

OBSERVE = """
import contextlib, io, json
from pycontain import cli, runtime
from pycontain.cgroups import controllers
from pycontain.cgroups.limits import FIELDS, Limits
from pycontain.errors import SpecError
from pycontain.spec import Spec

def refusal(call):
    try:
        call()
    except SpecError as e:
        return [e.parameter, str(e)]
    return None

limits = Limits(memory_max="64M", pids_max=20, stub_weight="50")
help_text = io.StringIO()
with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
    cli.main(["run", "--help"])
words = ["run", "--stub-weight", "50", "--pids-limit", "20", "--", "true"]
quick, slow = cli._quick_run_args(words), cli._argparse_args(words)
error = io.StringIO()
with contextlib.redirect_stderr(error), contextlib.suppress(SystemExit):
    cli.main(["run", "--stub-weight", "0", "--", "true"])
print(json.dumps({
    "fields": list(FIELDS), "repr": repr(limits), "settings": limits.settings(),
    "controllers": list(limits.controllers()), "doc": Limits.__doc__,
    "v1": controllers.to_v1(limits.settings()),
    "limits_refusal": refusal(lambda: Limits(stub_weight=0)),
    "spec_refusal": refusal(lambda: Spec(["true"], stub_weight="many")),
    "run_refusal": refusal(lambda: runtime.run(["true"], stub_weight=-1)),
    "help": help_text.getvalue(),
    "quick": vars(quick), "argparse": vars(slow), "options": cli._limit_options(quick),
    "flag_of": cli.FLAG_OF["stub_weight"], "error": error.getvalue(),
}))
"""


@pytest.fixture(scope="module")
def seen() -> dict:
    done = subprocess.run([sys.executable, "-c", REGISTER_A_STUB + OBSERVE],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_stub_is_a_field_of_limits(seen):
    assert seen["fields"] == [*FIELDS, "stub_weight"]  # after memory and pids, as registered
    assert seen["repr"] == "Limits(memory_max='64 MiB', pids_max=20, stub_weight=50)"
    assert seen["settings"] == {"memory.max": str(64 << 20), "pids.max": "20",
                                "stub.weight": "50"}
    assert seen["controllers"] == ["memory", "pids", "stub"]
    assert "stub_weight: stub.weight, a stub (lesson 15)." in seen["doc"]
    assert seen["v1"][-1] == ["stub", "stub.shares", "50"]
    assert seen["limits_refusal"] == [
        "stub_weight", "`stub_weight` must be a whole number of shares >= 1, or 'max', got 0"]


def test_the_stub_is_a_keyword_option_of_spec_and_run(seen):
    assert seen["spec_refusal"][0] == seen["run_refusal"][0] == "stub_weight"
    assert "got 'many'" in seen["spec_refusal"][1] and "got -1" in seen["run_refusal"][1]


def test_the_stub_is_a_flag_of_both_parsers_and_its_errors_name_it(seen):
    assert "--stub-weight WEIGHT" in seen["help"]
    assert "the stub's share of the CPU" in seen["help"]
    assert seen["quick"] == seen["argparse"]
    assert seen["quick"]["stub_weight"] == "50"
    assert seen["options"] == {"pids_max": "20", "stub_weight": "50"}
    assert seen["flag_of"] == "--stub-weight"
    assert seen["error"].startswith(
        "pycontain: --stub-weight must be a whole number of shares >= 1, or 'max', got '0'")


def test_without_the_stub_nothing_knows_it():
    assert "stub_weight" not in FIELDS and "stub" not in controllers.MODULES
    with pytest.raises(TypeError, match="unexpected keyword argument 'stub_weight'"):
        Limits(stub_weight=50)


def test_the_declarations_are_consistent():
    """Every field is named after its knob, which its module's FILES knows, and every flag
    is unique."""
    for name, field in FIELDS.items():
        # cpu_shares: docker's v1 knob cpu.shares; io_max_wbps: the wbps key of io.max
        assert name == field.knob.replace(".", "_") + (f"_{field.key}" if field.key else "")
        assert field.knob in controllers.MODULES[field.controller].FILES
    assert len({f.flag for f in FIELDS.values()}) == len(FIELDS)



def test_io_rates_name_a_block_device_by_number(tmp_path):
    """io.max's fields take docker's PATH:RATE and keep the device's MAJ:MIN (st_rdev)."""
    import os
    import stat

    null = os.stat("/dev/null")  # a character device: refused like a file
    assert stat.S_ISCHR(null.st_mode)
    for given, says in [("/dev/null:1M", "not a block device"),
                        (f"{tmp_path}/gone:1M", "No such file"),
                        (f"{tmp_path}:1M", "not a block device"),
                        ("1M", "must be 'PATH:RATE'")]:
        with pytest.raises(SpecError, match=says):
            Limits(io_max_wbps=given)


def test_io_rates_refuse_a_bad_rate(monkeypatch):
    """A fake block device 7:3 (unit test of parsing only; the kernel's are in test_io)."""
    import os
    import stat

    real_stat = os.stat

    class Device:
        st_mode = stat.S_IFBLK | 0o600
        st_rdev = os.makedev(7, 3)

    monkeypatch.setattr(os, "stat", lambda path, *a, **k: Device() if path == "/dev/fake"
                        else real_stat(path, *a, **k))
    assert Limits(io_max_wbps="/dev/fake:10MB", io_max_riops="/dev/fake:100").settings() == {
        "io.max": "7:3 wbps=10485760 riops=100"}
    assert Limits(io_max_rbps="/dev/fake:512k").settings() == {"io.max": "7:3 rbps=524288"}
    for field, given in [("io_max_wbps", "/dev/fake:1XB/s"), ("io_max_wbps", "/dev/fake:0"),
                         ("io_max_wiops", "/dev/fake:1.5"), ("io_max_wiops", "/dev/fake:0"),
                         ("io_max_rbps", "/dev/fake:")]:
        with pytest.raises(SpecError, match=f"`{field}` must be"):
            Limits(**{field: given})
