"""uts: a bad hostname is refused before any syscall, with a hint that fits the mistake."""

from __future__ import annotations

import pytest

from pycontain.errors import SpecError, format_error
from pycontain.namespaces import uts


@pytest.mark.parametrize("hostname,says,never", [
    ("", "empty", "shorter"),             # lesson 02's widget: an empty box is not "too long"
    ("x" * 65, "shorter", "empty"),
    ("é" * 33, "2-4 bytes", "empty"),    # 66 bytes in 33 characters
    ("box\0one", "NUL", "shorter"),
])
def test_a_bad_hostname_gets_the_hint_for_its_own_mistake(hostname, says, never):
    with pytest.raises(SpecError) as raised:
        uts.validate_hostname(hostname)
    message = format_error(raised.value)
    assert raised.value.parameter == "hostname" and "1-64 bytes" in message
    assert says in raised.value.hint and never not in raised.value.hint


def test_a_good_hostname_passes_unchanged():
    assert uts.validate_hostname("x" * 64) == "x" * 64
    assert uts.validate_hostname("é" * 32) == "é" * 32  # 64 bytes
