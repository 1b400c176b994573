"""Overlay options, writable layers and image members are checked before anything is mounted or
written (no root, no kernel: the real mounts are in tests/integration/test_layers.py)."""

from __future__ import annotations

import os
import tarfile

import pytest

from pycontain import init, settings
from pycontain.cli import _quick_run_args
from pycontain.errors import SpecError
from pycontain.fs import images, layers
from pycontain.runtime import Spec
from pycontain.syscalls import MountFlag
from pycontain.testing import init_spec, recorded

from .test_setup_order import Quiet


@pytest.fixture
def image(tmp_path):
    """The smallest tree a Spec accepts as a rootfs: one with /bin/sh."""
    root = tmp_path / "image"
    (root / "bin").mkdir(parents=True)
    (root / "bin/sh").write_text("")
    return root


def test_lower_dirs_must_be_directories(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    for bad in (a_file, tmp_path / "missing"):
        with pytest.raises(SpecError) as info:
            layers.validate_lowers([tmp_path, bad])
        assert info.value.parameter == "layers"
        assert str(info.value).startswith("`layers` must be a list of directories")
    with pytest.raises(SpecError, match="a list of directories"):
        layers.validate_lowers(str(tmp_path))  # one string is not a list
    assert layers.validate_lowers([tmp_path]) == [str(tmp_path)]


def test_a_layer_may_not_plant_a_symlink_where_the_runtime_mounts(tmp_path):
    (tmp_path / "proc").symlink_to("/")
    with pytest.raises(SpecError, match="without a symlink at /proc"):
        layers.validate_lowers([tmp_path])


def test_paths_that_would_break_the_mount_options_are_refused(tmp_path):
    odd = tmp_path / "a:b"
    odd.mkdir()
    with pytest.raises(SpecError, match="no ','"):
        layers.validate_lowers([odd])


def test_a_spec_validates_overlay_and_layers_before_anything_exists(image, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(SpecError, match="`overlay` must be used only with a rootfs"):
        Spec(["true"], overlay=True)
    with pytest.raises(SpecError, match="`layers` must be used only with overlay=True"):
        Spec(["sh"], rootfs=image, layers=[tmp_path])
    with pytest.raises(SpecError, match="`layers` must be a list of directories"):
        Spec(["sh"], rootfs=image, overlay=True, layers=[a_file])
    with pytest.raises(SpecError, match="`overlay` must be True, False or a directory"):
        Spec(["sh"], rootfs=image, overlay=a_file)
    assert not any(p.name.startswith(settings.LAYER_PREFIX) for p in tmp_path.iterdir())


def test_a_spec_keeps_its_layers_and_finds_the_command_in_them(image, tmp_path):
    app = tmp_path / "app"
    (app / "usr/bin").mkdir(parents=True)
    (app / "usr/bin/hello").write_text("")
    spec = Spec(["hello"], rootfs=image, overlay=True, layers=[app])
    assert spec.overlay is True and spec.layers == (str(app),)
    assert spec.executable == "/usr/bin/hello"  # found in the layer, not the rootfs
    assert "layers=" in repr(spec) and "overlay=True" in repr(spec)
    assert "layers=" not in repr(Spec(["sh"], rootfs=image))


def test_init_mounts_the_overlay_then_enters_it_as_the_root(tmp_path):
    layer = layers.writable_layer(tmp_path / "layer")
    wire = init_spec(namespaces=["mnt"], rootfs=str(tmp_path),
                     overlay=layer.wire([str(tmp_path)]))
    with recorded() as kernel:
        init.setup(wire, Quiet())
    mounts = [args for name, args in kernel.calls if name == "mount"]
    assert mounts[1] == ("overlay", layer.merged, "overlay", MountFlag(0),
                         f"lowerdir={tmp_path},upperdir={layer.upper},workdir={layer.work}")
    assert mounts[2][:2] == (layer.merged, layer.merged)  # the bind before pivot_root
    assert ("pivot_root", (".", ".")) in kernel.calls


def test_a_throwaway_layer_is_volatile_and_removed_a_kept_one_stays(tmp_path):
    kept = layers.writable_layer(tmp_path / "kept")
    assert not kept.throwaway and not kept.wire([])["volatile"]
    (tmp_path / "kept/upper/file").write_text("x")
    kept.discard()
    assert (tmp_path / "kept/upper/file").exists()
    gone = layers.writable_layer()
    try:
        assert gone.throwaway and gone.wire([])["volatile"]
        assert os.path.basename(gone.path).startswith("pycontain-layer-")
        os.makedirs(f"{gone.upper}/a/b")
        os.symlink("/", f"{gone.upper}/a/to-root")  # removed as a link, never followed
    finally:
        gone.discard()
    assert not os.path.exists(gone.path)
    assert layers.mount_options(["/l"], "/u", "/w", volatile=True).endswith(",volatile")


def test_diff_reads_added_and_changed_entries_without_the_kernel(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc/hosts").write_text("old")
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/hosts").write_text("new")
    (upper / "etc/new").write_text("")
    assert [repr(c) for c in layers.diff(upper, [lower])] == [
        "C /etc", "C /etc/hosts", "A /etc/new"]
    assert layers.changed_files(upper, [lower]) == {"/etc/hosts": "C", "/etc/new": "A"}
    assert not layers.is_whiteout(upper / "etc/hosts") and not layers.is_opaque(upper / "etc")


def test_the_cli_gives_a_rootfs_an_overlay_unless_told_not_to():
    args = _quick_run_args(["run", "--no-overlay", "--rootfs", "/r", "--", "true"])
    assert args is not None and args.no_overlay is True and args.rootfs == "/r"
    args = _quick_run_args(["run", "--rootfs", "/r", "--", "true"])
    assert args is not None and args.no_overlay is False


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "./../x"])
def test_members_outside_the_image_are_refused(name):
    with pytest.raises(SpecError, match="members stay inside the image") as info:
        images.check_member(tarfile.TarInfo(name))
    assert info.value.got == name


def test_links_are_checked_devices_skipped_names_cleaned():
    def member(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        return info

    assert images.check_member(member("./etc/passwd", tarfile.REGTYPE)).name == "etc/passwd"
    assert images.check_member(member("bin/sh", tarfile.SYMTYPE, "/bin/busybox")) is not None
    assert images.check_member(member("a/b", tarfile.SYMTYPE, "../c")) is not None
    with pytest.raises(SpecError, match="links point inside the image"):
        images.check_member(member("a/b", tarfile.SYMTYPE, "../../etc/shadow"))
    with pytest.raises(SpecError, match="members stay inside"):
        images.check_member(member("x", tarfile.LNKTYPE, "/etc/shadow"))
    assert images.check_member(member("dev/sda", tarfile.BLKTYPE)) is None
