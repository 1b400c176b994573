"""Finding commands the way execvp(3) will inside a rootfs, and reading ldd(1)."""

from __future__ import annotations

import os

from pycontain import rootfs


def test_find_command_searches_the_container_path_without_following_links(tmp_path):
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    os.symlink("/bin/busybox", tmp_path / "bin/ls")  # dangling on the host, fine inside
    (tmp_path / "usr/bin/tool").write_text("")
    assert rootfs.find_command("ls", str(tmp_path)) == "/bin/ls"
    assert rootfs.find_command("tool", str(tmp_path)) == "/usr/bin/tool"
    assert rootfs.find_command("/bin/ls", str(tmp_path)) == "/bin/ls"
    assert rootfs.find_command("cat", str(tmp_path)) is None


def test_ldd_output_with_and_without_libraries():
    text = ("\tlinux-vdso.so.1 (0x00007ffc)\n"
            "\tlibselinux.so.1 => /lib/x86_64-linux-gnu/libselinux.so.1 (0x00007f)\n"
            "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n"
            "\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n")
    assert rootfs.parse_ldd(text) == ["/lib/x86_64-linux-gnu/libselinux.so.1",
                                      "/lib/x86_64-linux-gnu/libc.so.6",
                                      "/lib64/ld-linux-x86-64.so.2"]
    assert rootfs.parse_ldd("\tstatically linked\n") == []


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PYCONTAIN_ROOTFS", str(tmp_path / "r"))
    assert rootfs.default_path() == tmp_path / "r"
