"""Images as files: unpack a `docker export` tarball or an OCI image layout (lesson 06).

An image is a stack of layers, and a layer is a tarball of one upper dir (`pycontain.fs.layers`):
the files a build step added or changed and, for each deletion, a *whiteout file* `.wh.NAME`
(a character device 0/0 travels badly in tar), or `.wh..wh..opq` in a directory that hides the
lower one. An OCI image layout is a directory: `index.json` points by sha256 digest to a manifest
in `blobs/sha256/`, which lists the layers bottom first. `import_oci_layout` applies them in that
order into one directory, honouring the whiteouts; `import_tarball` unpacks one flattened
tarball, as `docker export` or `podman export` write them. Both give a directory for `rootfs=`.

A tarball comes from elsewhere, so its members are checked before anything is written: a member
named `/etc/passwd` or `../etc/passwd`, a hard link to a host file, or a member written through a
symlink that the archive itself planted would change the host. `check_member` refuses those; the
image is built beside `dest` and renamed into place only when complete, so a refused archive
leaves nothing behind. tarfile's own `data` filter would also refuse absolute symlink targets,
which every Debian image holds (they resolve inside the container, after pivot_root), and strip
the setuid bit `su` needs: pycontain gives tarfile its own filter instead.

See also: tar(5); the OCI image spec: image-layout.md, manifest.md, layer.md ("Whiteouts");
docker-export(1), docker-save(1), skopeo-copy(1); Python's tarfile extraction filters.
Left out: zstd layers (not in the standard library), the older `docker save` format with only a
manifest.json (Docker 25 and later write an OCI layout), image configs (entrypoint, env).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tarfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pycontain.errors import SpecError
from pycontain.fs.layers import is_opaque, is_whiteout

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
REF_NAME = "org.opencontainers.image.ref.name"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_TYPES = frozenset({LAYER_TAR, LAYER_TAR + "+gzip",
                         "application/vnd.docker.image.rootfs.diff.tar.gzip"})
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
#: os.uname().machine -> the architecture name images use (Go's GOARCH)
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
          "s390x": "s390x", "riscv64": "riscv64"}

PathLike = str | os.PathLike[str]


def clean_name(name: str, parameter: str = "tarball") -> str:
    """A member name relative to the image root; refuse absolute names and `..`.

    >>> clean_name("./etc/passwd"), clean_name("bin/")
    ('etc/passwd', 'bin')
    """
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or "\0" in name:
        raise SpecError(parameter, "an archive whose members stay inside the image (relative "
                        "names, no '..')", name,
                        hint="extracting it would write outside the destination; nothing was "
                             "extracted (lesson 06)")
    return "/".join(parts)


def check_member(member: tarfile.TarInfo, parameter: str = "tarball") -> tarfile.TarInfo | None:
    """The member with a clean name, None for a device file (skipped), or raise `SpecError`."""
    name = clean_name(member.name, parameter)
    linkname = member.linkname
    if member.islnk():  # a hard link names another member of the archive
        linkname = clean_name(member.linkname, parameter)
    elif member.issym() and not member.linkname.startswith("/"):
        # An absolute target resolves inside the container, after pivot_root. A relative one
        # must not climb above the image root: on the host it would lead out of the image.
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        if target == ".." or target.startswith("../"):
            raise SpecError(parameter, "an archive whose links point inside the image",
                            f"{member.name} -> {member.linkname}",
                            hint="the link climbs out of the image root; nothing was "
                                 "extracted (lesson 06)")
    if member.ischr() or member.isblk():
        return None  # device files are the runtime's business: it builds /dev (lesson 05)
    copy = member.replace(name=name, linkname=linkname, deep=False) if hasattr(
        member, "replace") else _copied(member, name, linkname)
    return copy


def _copied(member: tarfile.TarInfo, name: str, linkname: str) -> tarfile.TarInfo:
    import copy  # Python < 3.11.4 has no TarInfo.replace

    new = copy.copy(member)
    new.name, new.linkname = name, linkname
    return new


def _through_no_symlink(root: str, rel: str, parameter: str, *, last: bool = False) -> None:
    """Refuse when a directory on the way to `rel` in `root` (or `rel` itself) is a symlink."""
    parts = rel.split("/")
    path = root
    for part in parts if last else parts[:-1]:
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise SpecError(parameter, "an archive that never writes through a symlink", rel,
                            hint=f"{path[len(root):]} is a symlink: following it could "
                                 "write outside the image (lesson 06)")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def image_filter(root: str, parameter: str = "tarball"
                 ) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]:
    """A tarfile extraction filter for images: checked names, nothing written through a link.

    It also makes room: a member replaces whatever a lower layer left at its path, except that
    a directory merges into a directory.
    """
    def keep(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        checked = check_member(member, parameter)
        if checked is None or not checked.name:
            return None
        _through_no_symlink(root, checked.name, parameter)
        if checked.islnk():
            _through_no_symlink(root, checked.linkname, parameter, last=True)
        target = os.path.join(root, checked.name)
        if not (checked.isdir() and os.path.isdir(target) and not os.path.islink(target)):
            _remove(target)
        return checked

    return keep


def apply_layer(tarball: PathLike, root: PathLike, *, whiteouts: bool = True,
                parameter: str = "tarball") -> int:
    """Apply one layer to `root`: whiteouts first, then its files. Returns the member count."""
    root = os.path.realpath(root)
    try:
        tar = tarfile.open(tarball, "r:*")  # plain, gzip, bzip2 or xz
    except (OSError, tarfile.TarError) as e:
        raise SpecError(parameter, "a tar archive (plain, gzip, bzip2 or xz)", os.fspath(tarball),
                        hint=f"{type(e).__name__}: {e} (lesson 06)") from None
    with tar:
        members = tar.getmembers()
        for member in members:  # every name is checked before anything is written
            check_member(member, parameter)
        keep = image_filter(root, parameter)
        for member in members:
            base = posixpath.basename(member.name.rstrip("/"))
            if whiteouts and base.startswith(WHITEOUT):
                _white_out(root, clean_name(member.name, parameter), parameter)
        for member in members:
            base = posixpath.basename(member.name.rstrip("/"))
            if whiteouts and base.startswith(WHITEOUT):
                continue
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: filters exist
                tar.extract(member, root, numeric_owner=True, filter=keep)
            elif (checked := keep(member, root)) is not None:
                tar.extract(checked, root, numeric_owner=True)
    return len(members)


def _white_out(root: str, name: str, parameter: str) -> None:
    """Delete what a whiteout file hides in the layers below."""
    _through_no_symlink(root, name, parameter)
    parent = os.path.join(root, posixpath.dirname(name))
    base = posixpath.basename(name)
    if base == OPAQUE:  # hide all of the lower directory; this layer's own files come later
        if os.path.isdir(parent) and not os.path.islink(parent):
            for child in os.listdir(parent):
                _remove(os.path.join(parent, child))
    else:
        _remove(os.path.join(parent, base[len(WHITEOUT):]))


@contextmanager
def _building(dest: PathLike) -> Iterator[str]:
    """A directory beside `dest` to build in, renamed to `dest` only when the build succeeded."""
    dest = os.path.abspath(dest)
    if os.path.lexists(dest) and not (os.path.isdir(dest) and not os.listdir(dest)):
        raise SpecError("dest", "a new or empty directory", dest)
    if not os.path.isdir(os.path.dirname(dest)):
        raise SpecError("dest", "a path whose parent directory exists", dest)
    work = f"{os.path.dirname(dest)}/.{os.path.basename(dest)}.importing-{os.urandom(4).hex()}"
    os.mkdir(work, 0o755)
    try:
        yield work
        if os.path.isdir(dest):
            os.rmdir(dest)
        os.rename(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def import_tarball(tarball: PathLike, dest: PathLike) -> Path:
    """Unpack a flattened image (`docker export`-style tarball) into `dest`; return its path."""
    with _building(dest) as work:
        apply_layer(tarball, work, whiteouts=False, parameter="tarball")
    return Path(dest)


# --- OCI image layouts ---------------------------------------------------------------------------

def _blob(layout: Path, descriptor: dict[str, object]) -> Path:
    """The blob a descriptor points to, after checking its sha256 digest."""
    digest = str(descriptor.get("digest", ""))
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or not all(
            c in "0123456789abcdef" for c in hexdigest):
        raise SpecError("layout", "descriptors with sha256:<64 hex digits> digests", digest)
    path = layout / "blobs" / "sha256" / hexdigest
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except FileNotFoundError:
        raise SpecError("layout", "a layout holding every blob it lists", str(path)) from None
    if h.hexdigest() != hexdigest:
        raise SpecError("layout", "blobs whose content matches their sha256 digest", str(path),
                        hint="the blob was changed or truncated after it was written (lesson 06)")
    return path


def _json_blob(layout: Path, descriptor: dict[str, object]) -> dict[str, object]:
    return dict(json.loads(_blob(layout, descriptor).read_bytes()))


def find_manifest(layout: PathLike, ref: str | None = None) -> dict[str, object]:
    """The image manifest that `ref` (or the only image) names, through nested indexes."""
    layout = Path(layout)
    try:
        index = json.loads((layout / "index.json").read_text())
    except (OSError, ValueError):
        raise SpecError("layout", "an OCI image layout directory (oci-layout, index.json, "
                        "blobs/)", str(layout)) from None
    candidates = index.get("manifests", [])
    if ref is not None:
        candidates = [d for d in candidates if d.get("annotations", {}).get(REF_NAME) == ref]
    arch = GOARCH.get(os.uname().machine, os.uname().machine)
    for _ in range(4):  # an index may point to a per-platform index: follow a few levels
        if len(candidates) > 1:
            candidates = [d for d in candidates
                          if d.get("platform", {}).get("architecture") == arch] or candidates
        if len(candidates) != 1:
            names = sorted(str(d.get("annotations", {}).get(REF_NAME)) for d in
                           index.get("manifests", []))
            raise SpecError("ref", f"one of the image names in index.json {names}", ref)
        document = _json_blob(layout, candidates[0])
        if "layers" in document:
            return document
        candidates = list(document.get("manifests", []))  # type: ignore[call-overload]
    raise SpecError("layout", "indexes nested at most 4 deep", str(layout))


def import_oci_layout(layout: PathLike, dest: PathLike, *, ref: str | None = None) -> Path:
    """Apply an OCI image layout's layers, bottom first, into `dest`; return its path."""
    manifest = find_manifest(layout, ref)
    with _building(dest) as work:
        for descriptor in manifest["layers"]:  # type: ignore[attr-defined]
            if descriptor.get("mediaType") not in LAYER_TYPES:
                raise SpecError("layout", f"layers of the types {sorted(LAYER_TYPES)}",
                                descriptor.get("mediaType"))
            apply_layer(_blob(Path(layout), descriptor), work, parameter="layout")
    return Path(dest)


# --- writing images: export, commit, layout ----------------------------------------------------

def _walk(root: str) -> Iterator[tuple[str, str]]:
    """(path, name inside) for every entry below `root`, parents first, in sorted order."""
    for here, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(here, name)
            yield full, os.path.relpath(full, root)


def export_tarball(root: PathLike, tarball: PathLike) -> Path:
    """Write the tree at `root` as one flattened tarball, like `docker export`."""
    with tarfile.open(tarball, "w") as tar:
        for full, name in _walk(os.fspath(root)):
            tar.add(full, arcname=name, recursive=False)
    return Path(tarball)


def commit_layer(upper: PathLike, tarball: PathLike) -> Path:
    """Write a container's upper dir as an OCI layer, like the diff `docker commit` stores.

    Whiteouts (character devices 0/0) become empty `.wh.NAME` files and an opaque directory
    gets a `.wh..wh..opq` file, the forms that survive tar.
    """
    with tarfile.open(tarball, "w") as tar:
        for full, name in _walk(os.fspath(upper)):
            if is_whiteout(full):
                parent, base = posixpath.split(name)
                tar.addfile(tarfile.TarInfo(posixpath.join(parent, WHITEOUT + base)))
                continue
            tar.add(full, arcname=name, recursive=False)
            if os.path.isdir(full) and is_opaque(full):
                tar.addfile(tarfile.TarInfo(posixpath.join(name, OPAQUE)))
    return Path(tarball)


def _put(blobs: Path, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def write_oci_layout(layout: PathLike, layers: Sequence[PathLike], *, ref: str = "latest"
                     ) -> Path:
    """Write an OCI image layout whose image `ref` stacks the layer tarballs (bottom first)."""
    layout = Path(layout)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    descriptors = [_put(blobs, Path(tar).read_bytes(), LAYER_TAR) for tar in layers]
    arch = GOARCH.get(os.uname().machine, os.uname().machine)
    config = {"architecture": arch, "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]}}
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                "config": _put(blobs, json.dumps(config).encode(), CONFIG), "layers": descriptors}
    entry = _put(blobs, json.dumps(manifest).encode(), MANIFEST)
    entry["annotations"] = {REF_NAME: ref}
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return layout
