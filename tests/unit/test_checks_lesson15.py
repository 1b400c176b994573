"""Lesson 15's checks name the wrong turns they can see in the learner's Limits before any
burner starts (issue 18); what only a run shows (two swapped, two equal) is in
tests/integration/test_cpu.py."""

from __future__ import annotations

import pytest

from pycontain.cgroups.limits import Limits
from pycontain.checks import CheckFailed, lesson15


@pytest.mark.parametrize("batch,web,says", [
    (None, Limits(cpu_weight=400), "`batch` is None; make each a Limits"),
    (Limits(cpu_max=0.2), Limits(cpu_weight=400), "a cap holds the job back"),
    (Limits(cpu_weight=100), Limits(cpu_max=0.8), "`web` sets cpu.max"),
    (Limits(), Limits(cpu_weight=400), "`batch` sets no share"),
    (Limits(memory_max="64M"), Limits(), "`batch and web` sets no share"),
])
def test_four_to_one_names_the_wrong_turn_before_it_runs(batch, web, says):
    with pytest.raises(CheckFailed) as info:
        lesson15.check_four_to_one(batch, web)
    assert says in str(info.value)
    told = str(info.value).replace(repr(batch), "").replace(repr(web), "")
    assert "cpu_weight" not in told  # where to look, not the keyword to write


@pytest.mark.parametrize("batch,web,says", [
    (Limits(cpu_weight=100), Limits(cpu_weight=400), "sets no cpu.max"),
    (Limits(cpu_weight=100, cpu_max=0.2), Limits(cpu_weight=400), "is 0.20 of a CPU"),
    (Limits(cpu_weight=100, cpu_max="25000 50000"), Limits(cpu_weight=400), None),
    (Limits(cpu_max=0.5), Limits(cpu_weight=400, cpu_max=1), "`web` sets cpu.max"),
    (Limits(cpu_max=0.5), Limits(), "`web` sets no share"),
])
def test_day_and_night_names_the_wrong_turn_before_it_runs(batch, web, says, monkeypatch):
    ran = []
    monkeypatch.setattr("pycontain.observe.sharing.share_experiment",
                        lambda *a, **k: ran.append(a) or (_ for _ in ()).throw(CheckFailed("ran")))
    with pytest.raises(CheckFailed) as info:
        lesson15.check_day_and_night(batch, web)
    if says is None:  # half a CPU spelt as its own period: right, so the check went on to run
        assert ran and str(info.value) == "ran"
    else:
        assert says in str(info.value) and not ran


def test_the_exercises_have_hints_and_the_stretch_is_marked():
    assert len(lesson15.check_four_to_one.hints.texts) == 3
    assert lesson15.check_day_and_night.stretch and not lesson15.check_four_to_one.stretch
