"""Checks for lesson 00, "Set up the lab".

Both look at this machine, not at the learner's code: the first re-runs the preflight, the second
looks for a directory on disk before and after a `Lab` is closed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pycontain import lab, settings
from pycontain.checks import Passed, expect


def check_fully_green() -> Passed:
    """Every line of the preflight is green: the required checks and the optional ones."""
    checks = lab.preflight()
    not_green = [c for c in checks if not c.ok]
    expect(not not_green,
           "the preflight is not fully green yet. Fix these lines, then run your cell and this "
           "one again:\n" + "\n".join(f"  {c.name}: {c.detail}\n    fix: {c.fix}"
                                      for c in not_green))
    return Passed(f"all {len(checks)} preflight checks are green: this machine is ready for "
                  "every lesson")


def check_left_nothing_behind(practice: lab.Lab, made: Path) -> Passed:
    """`made` exists until `practice.close()`, and is gone afterwards.

    When it is still there after `close()`, the check removes it itself (so that a failed attempt
    leaves nothing behind either) and says what was missing.
    """
    made = Path(made)
    expect(made.name.startswith(settings.PREFIX),
           f"{made} should be named {settings.PREFIX}…: the prefix is how `pycontain cleanup` "
           "finds leftovers after a crash")
    expect(made.exists(),
           f"{made} is already gone before practice.close(): create it, and let the undo you "
           "register with practice.defer(...) remove it, not your own code")
    practice.close()
    still_there = made.exists()
    if still_there:
        shutil.rmtree(made, ignore_errors=True)  # tidy up for the learner, then explain
    expect(not still_there,
           f"{made} was still there after practice.close(): a lab undoes only what it was "
           "told about. Right after creating it, register a function that removes it:\n"
           f"  practice.defer(<a function that removes it>, 'remove {made}')\n"
           "(this check removed it for you, so nothing is left behind; run your cell again)")
    expect(not any(str(made) in item for item in lab.leftovers()),
           f"{made} is still listed by leftovers()")
    return Passed(f"practice.close() removed {made}: nothing of it is left")
