"""Lesson 24's checks: the lifecycle exercise and its stretch pass on a right config.json and
fail, each with its own message, on the wrong turns; nothing is left behind."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from pycontain.checks import CheckFailed, lesson24
from pycontain.oci import conformance


def write_config(bundle, rootfs, **changes):
    conformance.example_config(bundle, rootfs)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        document = json.load(f)
    document["hostname"] = "try-it"
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    with open(path, "w") as f:
        json.dump(document, f)


def no_leftovers():
    base = tempfile.gettempdir()
    return [n for n in os.listdir(base) if n.startswith(("pycontain-lesson24-",
                                                         "pycontain-conformance-"))]


def test_a_right_config_passes():
    assert "all 9 promises of the lifecycle kept" in lesson24.check_lifecycle(write_config)
    assert not no_leftovers()


def test_a_process_that_never_writes_the_marker_breaks_the_lifecycle():
    def sleeps_only(bundle, rootfs):
        write_config(bundle, rootfs)
        path = os.path.join(bundle, "config.json")
        with open(path) as f:
            document = json.load(f)
        document["process"]["args"] = ["sleep", "60"]
        with open(path, "w") as f:
            json.dump(document, f)

    with pytest.raises(CheckFailed, match="the lifecycle broke a promise"):
        lesson24.check_lifecycle(sleeps_only)
    assert not no_leftovers()


def test_the_wrong_hostname_and_no_pids_limit_are_named():
    def loose(bundle, rootfs):
        write_config(bundle, rootfs, hostname="conformance")
        path = os.path.join(bundle, "config.json")
        with open(path) as f:
            document = json.load(f)
        del document["linux"]["resources"]
        with open(path, "w") as f:
            json.dump(document, f)

    with pytest.raises(CheckFailed) as caught:
        lesson24.check_lifecycle(loose)
    assert "its hostname is 'conformance'" in str(caught.value)
    assert "pids.max is not set (no cgroup), not 10" in str(caught.value)


def test_a_config_pycontain_refuses_names_the_field():
    with pytest.raises(CheckFailed, match="refuses the config.json: .*ociVersion"):
        lesson24.check_lifecycle(lambda b, r: write_config(b, r, ociVersion="0.1"))


def test_a_function_that_raises_is_reported_and_leaves_nothing():
    def broken(bundle, rootfs):
        raise RuntimeError("oops")

    with pytest.raises(CheckFailed, match="oops"):
        lesson24.check_lifecycle(broken)
    assert not no_leftovers()


def test_the_stretch_wants_the_hook_to_save_the_state():
    def with_hook(bundle, rootfs):
        write_config(bundle, rootfs)
        saved = os.path.join(bundle, "data", "hook.json")
        path = os.path.join(bundle, "config.json")
        with open(path) as f:
            document = json.load(f)
        document["hooks"] = {"prestart": [{"path": "/bin/sh",
                                           "args": ["sh", "-c", f"cat > {saved}"]}]}
        with open(path, "w") as f:
            json.dump(document, f)

    assert "the prestart hook saw the created container" in lesson24.check_prestart_hook(
        with_hook)
    with pytest.raises(CheckFailed, match="no prestart hook wrote it"):
        lesson24.check_prestart_hook(write_config)
    assert not no_leftovers()
