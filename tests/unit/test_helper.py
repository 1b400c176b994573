"""The fresh-interpreter protocol's failures: each a ProcessError with a hint, never a bare one."""

from __future__ import annotations

import subprocess

import pytest

from pycontain import helper, procfs
from pycontain.errors import ProcessError


def test_a_helper_that_does_not_answer_in_time_is_a_process_error(monkeypatch):
    def hangs(argv, **kwargs):
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    monkeypatch.setattr(helper.subprocess, "run", hangs)
    with pytest.raises(ProcessError, match=r"did not answer within 0\.5 s") as info:
        helper.in_fresh_process(procfs.namespaces, "self", timeout_s=0.5)
    assert info.value.hint and "\n  hint: " in str(info.value)


def test_a_helper_that_prints_no_answer_is_a_process_error():
    with pytest.raises(ProcessError, match="printed no answer") as info:
        helper.answer("", -9, "Killed", "namespaces")
    assert info.value.hint
