"""Image layers on the real kernel: copy-up, whiteouts, one image under many containers, imports.

Every claim of lesson 06, proven here: a container with an overlay writes only to its own upper
dir (a file appears there on its first write, whole), deletes by whiteout, and never changes the
image; two containers share one lower dir; a tarball or OCI layout imports into a rootfs, its
whiteouts honoured and its escapes refused; and nothing stays mounted or on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import time
from pathlib import Path

import pytest

import pycontain
from pycontain import helper, lab, procfs, runtime, settings
from pycontain.checks import CheckFailed, lesson06
from pycontain.errors import SpecError, SyscallError
from pycontain.fs import images, layers
from pycontain.observe import probe


def snapshot(root: str | Path) -> dict[str, tuple[int, int, str]]:
    """Every entry below root: mode, size and the sha256 of a regular file's bytes.

    A directory's size is its filesystem's business (4096 on ext4, 40 on tmpfs): left out."""
    seen = {}
    for here, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(here, name)
            st = os.lstat(full)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
            seen[os.path.relpath(full, root)] = (st.st_mode, size, digest)
    return seen


def my_leftovers() -> list[str]:
    return [item for item in lab.leftovers()
            if settings.LAYER_PREFIX in item or "importing" in item]


@pytest.fixture
def image(scratch, embedded_rootfs) -> str:
    """A private copy of the embedded rootfs, so that a failing test cannot damage the real one."""
    tarball = scratch.tempdir("image") / "rootfs.tar"
    images.export_tarball(embedded_rootfs, tarball)
    return str(images.import_tarball(tarball, tarball.parent / "rootfs"))


def test_first_write_copies_the_whole_file_up_and_reading_copies_nothing(scratch, image):
    layer = scratch.tempdir("layer")
    before = snapshot(image)
    hosts = Path(image, "etc/hosts").read_bytes()
    result = pycontain.run(["sh", "-c", "cat /etc/passwd >/dev/null; echo extra >> /etc/hosts"],
                           rootfs=image, overlay=layer)
    assert result.exit_code == 0, result.stderr
    upper = layer / "upper"
    assert not (upper / "etc/passwd").exists()  # only read: stays in the lower dir
    assert (upper / "etc/hosts").read_bytes() == hosts + b"extra\n"  # copied whole, then written
    assert layers.changed_files(upper, [image]) == {"/etc/hosts": "C"}
    assert snapshot(image) == before  # the image never changed


def test_delete_leaves_a_whiteout_and_a_recreated_dir_is_opaque(scratch, image):
    layer = scratch.tempdir("layer")
    result = pycontain.run(["sh", "-c", "rm /etc/hosts; rm -r /root; mkdir /root; "
                            "echo mine > /root/note"], rootfs=image, overlay=layer)
    assert result.exit_code == 0, result.stderr
    upper = layer / "upper"
    st = os.lstat(upper / "etc/hosts")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == os.minor(st.st_rdev) == 0
    assert layers.is_whiteout(upper / "etc/hosts") and layers.is_opaque(upper / "root")
    assert Path(image, "etc/hosts").exists()  # still in the image
    assert layers.changed_files(upper, [image]) == {
        "/etc/hosts": "D", "/root": "C", "/root/note": "A"}
    # the same writable layer, mounted again: the file stays deleted for the next container
    again = pycontain.run(["sh", "-c", "ls /etc; ls /root"], rootfs=image, overlay=layer)
    assert "hosts" not in again.stdout.split() and again.stdout.split()[-1] == "note"


def test_two_containers_share_one_lower_dir_and_each_upper_holds_only_its_diffs(image):
    before = snapshot(image)
    boxes = [pycontain.spawn(["sh", "-c", f"echo {name} > /etc/{name}; rm /etc/group; "
                                          "touch /ready; sleep 30"],
                             rootfs=image, overlay=True) for name in ("one", "two")]
    try:
        for box in boxes:
            assert box.layer is not None and box.layer.throwaway
            deadline = time.monotonic() + 10
            while not os.path.exists(f"{box.layer.upper}/ready"):
                assert time.monotonic() < deadline and box.running
                time.sleep(0.02)
        for box, name in zip(boxes, ("one", "two"), strict=True):
            assert layers.changed_files(box.layer.upper, [image]) == {
                f"/etc/{name}": "A", "/etc/group": "D", "/ready": "A"}
        # one lower dir for both: the same image directory under two different uppers
        uppers = {box.layer.upper for box in boxes}
        assert len(uppers) == 2
    finally:
        for box in boxes:
            probe.stop(box)
    assert snapshot(image) == before
    assert all(not os.path.exists(box.layer.path) for box in boxes)  # removed like --rm


def test_layers_stack_topmost_first_and_the_command_may_come_from_one(scratch, image):
    app = scratch.tempdir("app")
    (app / "usr/local/bin").mkdir(parents=True)
    script = app / "usr/local/bin/hello"
    script.write_text("#!/bin/sh\necho hello from the app layer\n")
    script.chmod(0o755)
    (app / "etc").mkdir()
    (app / "etc/hosts").write_text("from the app layer\n")
    result = pycontain.run(["sh", "-c", "hello; cat /etc/hosts"], rootfs=image, overlay=True,
                           layers=[app])
    assert result.stdout == "hello from the app layer\nfrom the app layer\n", result.stderr
    assert pycontain.run(["hello"], rootfs=image, overlay=True, layers=[app]).exit_code == 0


def test_a_non_directory_lower_dir_is_refused_with_nothing_mounted(scratch, image):
    a_file = scratch.tempdir("lower") / "not-a-dir"
    a_file.write_text("")
    mounts = procfs.mountinfo("self")
    with pytest.raises(SpecError) as info:
        pycontain.run(["true"], rootfs=image, overlay=True, layers=[a_file])
    assert info.value.parameter == "layers" and "a file" in str(info.value)
    assert procfs.mountinfo("self") == mounts and my_leftovers() == []


def test_a_failed_start_removes_its_throwaway_layer(image):
    with pytest.raises(SyscallError) as info:
        pycontain.run(["/etc/passwd"], rootfs=image, overlay=True)  # not executable
    assert info.value.call == "execve"
    assert my_leftovers() == []


def test_a_failing_layer_discard_still_releases_the_cgroup_and_the_veth(image, monkeypatch):
    """The undo stack: the overlay's discard raises, and the cgroup and the network are
    released all the same (and the layer's warning says what was skipped)."""
    real_discard = layers.WritableLayer.discard

    def stuck(layer):
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(layers.WritableLayer, "discard", stuck)
    container = pycontain.spawn(["true"], rootfs=image, overlay=True, pids_max=16,
                                network="bridge")
    assert container.cgroup is not None and container.network is not None
    veth, cgroup_dirs = container.network.veth, list(container.cgroup.dirs.values())
    assert veth is not None and all(os.path.isdir(d) for d in cgroup_dirs)
    with pytest.warns(UserWarning, match=r"^Failed to discard the writable layer .*, ignoring$"):
        result = container.wait(timeout_s=60)
    assert result.exit_code == 0, result.stderr
    assert not any(os.path.isdir(d) for d in cgroup_dirs)
    assert not os.path.exists(f"/sys/class/net/{veth}") and container.network.veth is None
    assert container.layer is not None and os.path.isdir(container.layer.path)  # the stuck one
    assert [item for item in my_leftovers() if "importing" not in item] == [
        f"dir {container.layer.path}"]
    real_discard(container.layer)
    container.wait()  # idempotent: nothing runs twice
    assert my_leftovers() == []


def test_copy_up_cost_grows_with_the_file(scratch):
    measured = helper.in_fresh_process(layers.measure_copy_up, [1, 16], 1, timeout_s=60)
    assert measured["sizes_mib"] == [1, 16]
    first, second = measured["first_ms"], measured["second_ms"]
    assert first[1] > second[1]  # 16 MiB copied up vs a file already in upper
    assert my_leftovers() == [] and not any("copy-up" in item for item in lab.leftovers())


def test_the_cli_keeps_the_image_unchanged_unless_told_not_to(cli, image):
    before = snapshot(image)
    done = cli("run", "--rootfs", image, "--", "sh", "-c", "echo x > /cli; rm /etc/hosts")
    assert done.returncode == 0, done.stderr
    assert snapshot(image) == before and my_leftovers() == []
    done = cli("run", "--no-overlay", "--rootfs", image, "--", "sh", "-c", "echo x > /cli")
    assert done.returncode == 0, done.stderr
    assert Path(image, "cli").read_text() == "x\n"


# --- importing images ------------------------------------------------------------------------

def add(tar: tarfile.TarFile, name: str, data: bytes | None = None, *, kind: bytes = b"0",
        target: str = "", mode: int = 0o644) -> None:
    """Add one member by hand: a file with `data`, or a directory, symlink or hard link."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, mode
    if kind == tarfile.DIRTYPE:
        info.mode = 0o755
    info.size = len(data or b"")
    tar.addfile(info, io.BytesIO(data or b""))


def tarball(path: Path, *members: tuple) -> Path:
    with tarfile.open(path, "w") as tar:
        for member in members:
            add(tar, *member[:2], **(member[2] if len(member) > 2 else {}))
    return path


@pytest.mark.parametrize("evil", [
    ("/pycontain-escape-abs", b"x"),
    ("../pycontain-escape-up", b"x"),
    ("ok/../../pycontain-escape-up", b"x"),
    ("link", None, {"kind": tarfile.SYMTYPE, "target": "../pycontain-escape-link"}),
    ("hard", None, {"kind": tarfile.LNKTYPE, "target": "../pycontain-escape-hard"}),
], ids=["absolute", "dotdot", "inner-dotdot", "symlink-out", "hardlink-out"])
def test_a_tarball_escaping_the_image_is_refused_and_nothing_extracted(scratch, evil):
    work = scratch.tempdir("import")
    tar = tarball(work / "evil.tar", ("bin/", None, {"kind": tarfile.DIRTYPE}),
                  ("bin/sh", b"#!"), evil)
    with pytest.raises(SpecError, match="`tarball` must be an archive"):
        images.import_tarball(tar, work / "image")
    assert sorted(p.name for p in work.iterdir()) == ["evil.tar"]  # no image, no half of one
    assert not any(Path(p).exists() for p in ("/pycontain-escape-abs", "/tmp/pycontain-escape-up",
                                              "/tmp/pycontain-escape-link"))


def test_a_tarball_writing_through_its_own_symlink_is_refused(scratch):
    work = scratch.tempdir("import")
    outside = scratch.tempdir("outside")
    tar = tarball(work / "evil.tar", ("etc", None, {"kind": tarfile.SYMTYPE,
                                                   "target": str(outside)}),
                  ("etc/passwd", b"root::0:0::/:/bin/sh\n"))
    with pytest.raises(SpecError, match="never writes through a symlink"):
        images.import_tarball(tar, work / "image")
    assert list(outside.iterdir()) == [] and not (work / "image").exists()
    assert not any(p.name.startswith(".image.importing") for p in work.iterdir())


def test_an_exported_rootfs_imports_and_runs(scratch, embedded_rootfs):
    work = scratch.tempdir("import")
    tar = images.export_tarball(embedded_rootfs, work / "rootfs.tar")
    root = images.import_tarball(tar, work / "rootfs")
    assert snapshot(root) == snapshot(embedded_rootfs)  # modes, sizes and bytes alike
    result = pycontain.run(["sh", "-c", "cat /etc/os-release"], rootfs=root)
    assert "pycontain" in result.stdout, result.stderr


def blob(layout: Path, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def oci_layout(layout: Path, *layer_bytes: bytes, gzipped: bool = False) -> Path:
    """An OCI image layout written by hand: blobs by sha256, a manifest, an index."""
    (layout / "blobs/sha256").mkdir(parents=True)
    kind = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzipped else "")
    layer_descriptors = [blob(layout, gzip.compress(b) if gzipped else b, kind)
                         for b in layer_bytes]
    config = blob(layout, json.dumps({"os": "linux", "architecture": "amd64", "rootfs": {
        "type": "layers", "diff_ids": []}}).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = blob(layout, json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layer_descriptors}).encode(),
        "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": "demo"}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2,
                                                   "manifests": [manifest]}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return layout


def tar_bytes(*members: tuple) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            add(tar, *member[:2], **(member[2] if len(member) > 2 else {}))
    return buffer.getvalue()


DIR = {"kind": tarfile.DIRTYPE}
BASE = tar_bytes(("bin", None, DIR), ("bin/sh", b"#!", {"mode": 0o755}), ("etc", None, DIR),
                 ("etc/hosts", b"base"), ("etc/motd", b"base"), ("var", None, DIR),
                 ("var/cache", None, DIR), ("var/cache/a", b"a"), ("var/cache/b", b"b"))
TOP = tar_bytes(("etc", None, DIR), ("etc/.wh.hosts", b""), ("etc/motd", b"top"),
                ("var/cache", None, DIR), ("var/cache/.wh..wh..opq", b""),
                ("var/cache/c", b"c"), ("new", b"top"))


@pytest.mark.parametrize("gzipped", [False, True], ids=["tar", "tar+gzip"])
def test_an_oci_layout_applies_layers_in_order_with_whiteouts(scratch, gzipped):
    work = scratch.tempdir("oci")
    layout = oci_layout(work / "layout", BASE, TOP, gzipped=gzipped)
    root = images.import_oci_layout(layout, work / "rootfs", ref="demo")
    assert not (root / "etc/hosts").exists()  # .wh.hosts deleted the base layer's file
    assert (root / "etc/motd").read_text() == "top"  # the upper layer wins
    assert sorted(os.listdir(root / "var/cache")) == ["c"]  # opaque: a and b hidden, c kept
    assert (root / "new").read_text() == "top" and (root / "bin/sh").exists()
    assert not any(n.startswith(".wh.") for _, d, f in os.walk(root) for n in d + f)


def test_an_oci_layout_with_a_changed_blob_or_an_unknown_ref_is_refused(scratch):
    work = scratch.tempdir("oci")
    layout = oci_layout(work / "layout", BASE)
    with pytest.raises(SpecError, match="`ref` must be one of the image names"):
        images.import_oci_layout(layout, work / "rootfs", ref="nope")
    base_blob = layout / "blobs/sha256" / hashlib.sha256(BASE).hexdigest()
    base_blob.write_bytes(BASE[:-512])
    with pytest.raises(SpecError, match="matches their sha256 digest"):
        images.import_oci_layout(layout, work / "rootfs")
    assert sorted(p.name for p in work.iterdir()) == ["layout"]


def test_a_committed_upper_dir_round_trips_through_an_oci_layout(scratch, image):
    work = scratch.tempdir("commit")
    layer = work / "layer"
    pycontain.run(["sh", "-c", "rm /etc/hosts; rm -r /root; mkdir /root; echo hi > /root/hi; "
                   "echo hello > /hello"], rootfs=image, overlay=layer)
    base = images.export_tarball(image, work / "base.tar")
    top = images.commit_layer(layer / "upper", work / "top.tar")
    names = tarfile.open(top).getnames()
    assert "etc/.wh.hosts" in names and "root/.wh..wh..opq" in names
    root = images.import_oci_layout(images.write_oci_layout(work / "layout", [base, top]),
                                    work / "rootfs")
    result = pycontain.run(["sh", "-c", "ls /etc /root; cat /hello"], rootfs=root)
    assert "hosts" not in result.stdout.split() and result.stdout.split()[-2:] == ["hi", "hello"]


# --- lesson 06's checks: each wrong turn its own diagnosis, nothing left running -------------

def host_etc() -> dict[str, tuple[int, int, str]]:
    return {name: (os.lstat(f"/etc/{name}").st_size, os.lstat(f"/etc/{name}").st_mtime_ns, "")
            for name in ("hosts", "group", "passwd")}


def own_layer(image, argv):
    return pycontain.spawn(argv, rootfs=image, overlay=True)


def no_layer(image, argv):
    return pycontain.spawn(argv, rootfs=image)


def no_image(image, argv):  # argv then runs on the host's root: it must change nothing there
    return pycontain.spawn(argv)


def waits_for_it(image, argv):
    return pycontain.run(argv, rootfs=image, overlay=True, timeout_s=1)


def one_layer_for_both(image, argv):  # the same directory for both containers' layer
    return pycontain.spawn(argv, rootfs=image, overlay=str(Path(image).parent / "shared"))


def raises_after_spawning(image, argv):
    pycontain.spawn(argv, rootfs=image, overlay=True)
    raise ValueError("not yet")


def test_the_own_layers_check_passes_a_layer_per_container():
    assert "each upper dir holds exactly its own" in lesson06.check_own_layers(own_layer)
    assert runtime.unwaited() == []


@pytest.mark.parametrize("wrong,says", [
    (no_layer, "no writable layer of its own"),
    (no_image, "the host's own /"),
    (waits_for_it, "a container that has ended"),
    (one_layer_for_both, "write to the same upper dir"),
    (raises_after_spawning, "raised ValueError: not yet"),
    (lambda image, argv: None, "return the running container"),
])
def test_the_own_layers_check_names_the_wrong_turn_and_stops_what_was_started(wrong, says):
    etc = host_etc()
    with pytest.raises(CheckFailed, match=re.escape(says)) as info:
        lesson06.check_own_layers(wrong)
    assert "overlay=" not in str(info.value) and "rootfs=" not in str(info.value)
    assert runtime.unwaited() == []  # every container the function started was stopped
    assert host_etc() == etc and not os.path.exists("/check06")  # the host's root untouched
    assert not [d for d in os.listdir("/tmp") if d.startswith("pycontain-check06-")]


def library_diff(upper, image):
    return layers.changed_files(upper, [image])


def with_carriers(upper, image):
    return {c.path: c.kind for c in layers.diff(upper, [image])}


def no_whiteouts(upper, image):
    return {p: ("A" if k == "D" else k) for p, k in library_diff(upper, image).items()}


def blind_to_opaque(upper, image):
    found = library_diff(upper, image)
    found["/var/www/index.html"] = "C"  # the image has that name, but /var/www is opaque
    return found


def all_added(upper, image):
    return {p: "A" for p, k in library_diff(upper, image).items() if k != "D"} | {
        p: "D" for p, k in library_diff(upper, image).items() if k == "D"}


def host_paths(upper, image):
    return {upper + p: k for p, k in library_diff(upper, image).items()}


def relative_paths(upper, image):
    return {p.lstrip("/"): k for p, k in library_diff(upper, image).items()}


def misses_the_symlink(upper, image):
    return {p: k for p, k in library_diff(upper, image).items() if p != "/etc/app.conf"}


def test_the_stretch_passes_the_librarys_diff_and_shows_it_only_then():
    passed = lesson06.check_docker_diff(library_diff)
    assert "all 9 changes" in passed and "def changed_files" in passed._repr_markdown_()


@pytest.mark.parametrize("wrong,says", [
    (with_carriers, "copied up only to hold the changes below it"),
    (no_whiteouts, "a whiteout, a character device 0/0"),
    (blind_to_opaque, "below an opaque directory"),
    (all_added, "which the image has at the same path"),
    (host_paths, "as the container sees them, from its /"),
    (relative_paths, "starting with '/'"),
    (misses_the_symlink, "you left out /etc/app.conf, a symlink"),
    (lambda upper, image: [], "return a dict"),
    (lambda upper, image: int("not yet"), "raised ValueError"),
])
def test_the_stretch_names_the_wrong_turn(wrong, says):
    with pytest.raises(CheckFailed, match=re.escape(says)):
        lesson06.check_docker_diff(wrong)
    assert not [d for d in os.listdir("/tmp") if d.startswith("pycontain-check06-")]
