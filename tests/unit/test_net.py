"""Lesson 08 without the kernel: parsing network options, and the nft ruleset they become."""

from __future__ import annotations

import pytest

from pycontain.cli import _quick_run_args
from pycontain.errors import SpecError
from pycontain.namespaces import net
from pycontain.network import nft, options


@pytest.mark.parametrize("given, expected", [
    ("8080:80", (8080, 80, "tcp")),
    ("5353:53/udp", (5353, 53, "udp")),
    ((8080, 80), (8080, 80, "tcp")),
    ([1, 65535, "udp"], (1, 65535, "udp")),
])
def test_published_ports_parse(given, expected):
    assert options.parse_port(given) == expected


@pytest.mark.parametrize("given", ["8080", "8080:80:1", "http:80", "0:80", "8080:65536",
                                   "8080:80/sctp", "", (8080,), 8080, "-1:80"])
def test_malformed_published_ports_name_the_parameter_and_the_form(given):
    with pytest.raises(SpecError) as caught:
        options.parse_port(given)
    assert caught.value.parameter == "publish" and "HOST:CONTAINER" in str(caught.value)


@pytest.mark.parametrize("mode", ["bridged", "", None, "Host"])
def test_unknown_modes_are_refused(mode):
    with pytest.raises(SpecError, match="one of none, bridge, host"):
        options.validate_mode(mode)


@pytest.mark.parametrize("subnet", ["10.207.0.0/33", "10.207.0.1/24", "8.8.8.0/24",
                                    "10.0.0.0/8", "10.207.0.0/30", "fd00::/64"])
def test_bad_subnets_are_refused(subnet):
    with pytest.raises(SpecError) as caught:
        options.validate_subnet(subnet)
    assert caught.value.parameter == "subnet"


def test_the_namespaces_follow_the_mode():
    def chosen(network, namespaces=frozenset({"net", "uts"}), given=False):
        return options.validate(network, (), None, frozenset(namespaces), given)[:2]

    assert chosen(None) == ({"net", "uts"}, "none")
    assert chosen(None, {"uts"}) == ({"uts"}, "host")
    assert chosen("host") == ({"uts"}, "host")
    assert chosen("none", {"uts"}) == ({"net", "uts"}, "none")
    with pytest.raises(SpecError, match="without 'net'"):
        chosen("host", given=True)


def test_the_ruleset_masquerades_each_subnet_once_and_dnats_each_port():
    records = [{"address": "10.207.0.2", "subnet": "10.207.0.0/24", "publish": []},
               {"address": "10.207.0.3", "subnet": "10.207.0.0/24",
                "publish": [[8080, 80, "tcp"], [5353, 53, "udp"]]}]
    rules = nft.render(records, "pycontain-br0")
    assert rules.count("masquerade") == 1
    assert rules.count("udp dport 5353 dnat to 10.207.0.3:53") == 2  # prerouting and output
    assert rules.startswith("table ip pycontain {}\nflush table ip pycontain\n")


def test_no_container_leaves_empty_chains():
    assert "dnat" not in nft.render([], "pycontain-br0")


def test_the_quick_parser_collects_repeated_publish_options():
    args = _quick_run_args(["run", "--network", "bridge", "-p", "8080:80", "--publish=53:53/udp",
                            "--", "true"])
    assert args is not None
    assert (args.network, args.publish) == ("bridge", ["8080:80", "53:53/udp"])


def test_only_pycontain_links_can_be_unplugged():
    with pytest.raises(SpecError, match="`name` must be a link pycontain made"):
        net.set_up("eth0", False)


def test_a_bridge_without_nft_is_refused_before_anything_is_created(monkeypatch):
    from pycontain import cgroups, lab, runtime
    from pycontain.errors import PreflightError

    monkeypatch.setattr(lab, "require_ready", lambda **kwargs: None)
    monkeypatch.setattr(nft.shutil, "which", lambda name: None)
    monkeypatch.setattr(cgroups, "create", lambda *a, **k: pytest.fail("created a cgroup"))
    monkeypatch.setattr(runtime.os, "pipe2", lambda flags: pytest.fail("made the pipes"))
    with pytest.raises(PreflightError, match="needs the nft tool") as info:
        runtime.spawn(["/bin/true"], network="bridge", pids_max=10)
    assert "apt-get install nftables" in str(info.value) and "(lesson 08)" in str(info.value)


def test_nft_refusing_the_table_or_hanging_is_a_process_error_with_a_hint(monkeypatch):
    import subprocess

    from pycontain.errors import ProcessError

    monkeypatch.setattr(nft.shutil, "which", lambda name: "/usr/sbin/nft")
    monkeypatch.setattr(nft.subprocess, "run", lambda argv, **kwargs: subprocess.CompletedProcess(
        argv, 1, "", "Error: Could not process rule: No such file or directory"))
    with pytest.raises(ProcessError, match="nft -f - failed: Error: Could not") as info:
        nft.apply([], "pycontain-br0")
    assert info.value.hint

    def hangs(argv, **kwargs):
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    monkeypatch.setattr(nft.subprocess, "run", hangs)
    with pytest.raises(ProcessError, match=r"did not end within 30 s") as info:
        nft.apply([], "pycontain-br0")
    assert info.value.hint
