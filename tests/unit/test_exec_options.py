"""The grammar of exec's and run's process options, without root: `-e`, env files, `-u`,
`-v` (cli, security.identity, fs.volumes) and the state's record of what exec takes on."""

from __future__ import annotations

import os

import pytest

from pycontain import cli, nsenter
from pycontain.errors import SpecError
from pycontain.fs import volumes
from pycontain.security import identity


def test_e_sets_a_variable_or_takes_this_shells_value():
    host = {"HOME": "/root", "EMPTY": ""}
    assert cli.environment_variables(["A=1", "B=x=y", "C=", "HOME", "EMPTY", "NONE"],
                                     host=host) == {"A": "1", "B": "x=y", "C": "",
                                                    "HOME": "/root", "EMPTY": ""}
    for bad in ("=1", "A B=1", "", "\tA"):
        with pytest.raises(SpecError, match="`env` must be K=V or K"):
            cli.environment_variables([bad], host=host)


def test_an_env_file_skips_comments_and_blank_lines_and_e_wins(tmp_path):
    path = tmp_path / "env"
    path.write_text("# comment\n\nA=file\n  B=2\nC='quoted stays'\n#D=no\n")
    assert cli.environment([str(path)], ["A=flag"]) == {"A": "flag", "B": "2",
                                                        "C": "'quoted stays'"}
    with pytest.raises(SpecError, match="`env_file` must be a readable file") as refused:
        cli.environment([str(tmp_path / "none")], [])
    assert "No such file" in str(refused.value)
    path.write_text("BAD NAME=1\n")
    with pytest.raises(SpecError, match="`env_file` must be K=V or K"):
        cli.environment([str(path)], [])


def test_w_must_be_absolute():
    assert cli.workdir("/srv") == "/srv"
    with pytest.raises(SpecError, match="`cwd` must be an absolute path"):
        cli.workdir("srv")


@pytest.fixture
def root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "app:x:1000:1001::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nstaff:x:50:app\n")
    return str(tmp_path)


def test_u_takes_numbers_or_names_the_rootfs_knows(root):
    assert identity.resolve("1000", root) == (1000, 1001)  # the passwd line's group
    assert identity.resolve("4242", root) == (4242, 0)  # no line: group 0, as Docker
    assert identity.resolve("app", root) == (1000, 1001)
    assert identity.resolve("app:staff", root) == (1000, 50)
    assert identity.resolve("0:7", root) == (0, 7)
    with pytest.raises(SpecError, match="has no user 'ghost' \\(it has root, app\\)"):
        identity.resolve("ghost", root)
    with pytest.raises(SpecError, match="has no group 'wheel'"):
        identity.resolve("app:wheel", root)
    for bad in ("", ":1", "1:", "1:2:3", "4294967295"):
        with pytest.raises(SpecError, match="`user` must be"):
            identity.resolve(bad, root)


def test_v_parses_host_container_and_ro():
    assert volumes.parse("/a:/b") == ("/a", "/b", False)
    assert volumes.parse("/a:/b:ro") == ("/a", "/b", True)
    assert volumes.parse("/a:/b:rw") == ("/a", "/b", False)
    for bad in ("/a", "/a:", ":/b", "/a:/b:rx", "/a:/b:ro:x"):
        with pytest.raises(SpecError, match="`volumes` must be HOST:CONTAINER"):
            volumes.parse(bad)


def test_v_checks_both_paths_before_anything_is_made(root, tmp_path):
    source = str(tmp_path / "etc")
    assert volumes.validate([f"{source}:/data/./x/"], root) == (("/" + source.lstrip("/"),
                                                                 "/data/x", False),)
    refusals = {
        "etc:/data": "an absolute host path", f"{tmp_path}/none:/data": "a host path that exists",
        f"{source}:data": "an absolute container path", f"{source}:/": "other than /",
        f"{source}:/proc": "not over /proc", f"{source}:/sys/fs": "not over /proc, /sys",
        f"{source}:/dev/x": "or /dev", f"{source}:/a/../../proc": "not over /proc",
    }
    for given, message in refusals.items():
        with pytest.raises(SpecError, match=message):
            volumes.validate([given], root)
    os.symlink("/etc", os.path.join(root, "escape"))  # inside the image, pointing outside
    with pytest.raises(SpecError, match="a container path inside the rootfs"):
        volumes.validate([f"{source}:/escape/x"], root)
    with pytest.raises(SpecError, match="`volumes` must be used only with a rootfs"):
        volumes.validate([f"{source}:/data"], None)


def test_the_state_records_what_exec_takes_on_as_json():
    wire = {"env": {"A": "1"}, "cwd": "/", "user": None, "capabilities": None,
            "no_new_privs": True, "seccomp": b"\x06\x00", "argv": ["x"]}
    assert nsenter.recorded(wire) == {"env": {"A": "1"}, "cwd": "/", "user": None,
                                      "capabilities": None, "no_new_privs": True,
                                      "seccomp": "0600"}


def test_the_quick_parser_reads_the_new_flags_as_argparse_does():
    words = ["run", "-e", "A=1", "--env=B=2", "-w", "/srv", "-u", "1000:1000", "-v", "/a:/b:ro",
             "--env-file", "f", "-i", "-t", "--", "sh"]
    quick = vars(cli._quick_run_args(words))
    full = vars(cli._argparse_args(words))
    assert {k: quick[k] for k in ("env", "env_file", "workdir", "user", "volume", "interactive",
                                  "tty")} == {"env": ["A=1", "B=2"], "env_file": ["f"],
                                              "workdir": "/srv", "user": "1000:1000",
                                              "volume": ["/a:/b:ro"], "interactive": True,
                                              "tty": True}
    assert quick == {k: v for k, v in full.items() if k in quick}
