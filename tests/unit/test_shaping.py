"""network.shaping and the rate options, without root: the grammar and the refusals that come
before anything is created (the shaping itself: tests/integration/test_shaping.py)."""

from __future__ import annotations

import pytest

from pycontain.errors import SpecError
from pycontain.network import options, shaping


@pytest.mark.parametrize(("text", "rate_bps"), [
    ("10mbit", 10_000_000), ("500kbit", 500_000), ("1gbit", 10**9), ("2mbps", 16_000_000),
    ("8kbit", 8_000), (" 1.5Mbit ", 1_500_000)])
def test_rates_in_tcs_grammar(text, rate_bps):
    assert shaping.parse_rate(text) == rate_bps


@pytest.mark.parametrize("text", ["10mb", "10", "mbit", "-1mbit", "1bit", "20gbit", 10, None])
def test_other_rates_are_refused_naming_the_parameter(text):
    with pytest.raises(SpecError) as refused:
        shaping.parse_rate(text, "ingress_rate")
    assert refused.value.parameter == "ingress_rate" and "10mbit" in refused.value.accepted


def test_a_rate_needs_the_bridge():
    with pytest.raises(SpecError) as refused:
        options.validate_rates("none", "5mbit", None)
    assert refused.value.needs == ("network", "bridge") and refused.value.parameter == "egress_rate"
    assert options.validate_rates("bridge", None, "1mbit") == (None, 1_000_000)


def test_the_bucket_holds_a_few_frames_at_least_and_20_ms_at_the_rate():
    assert shaping.burst_bytes(8_000) == 4 * 1514
    assert shaping.burst_bytes(10**9) == 10**9 // 8 // 50
