"""Build the course's two release archives (`make release`, issue 16).

    python3 tools/release.py [--out dist] [--version V]

- `dist/pycontain-learner-VERSION.tar.gz`: what a learner needs and nothing that answers an
  exercise: the package, the learner notebooks (`notebooks/*.ipynb`), the lab VM's files
  (`vagrant/`), the README, the Makefile and pyproject.toml (`make lab`, `vagrant up`), docs/.
  Never a lesson source (its solution blocks are the answers), never `notebooks/solutions/`,
  never the instructor guide, the tests (they call the checks with working answers) or the tools
  that build solutions. `tests/lessons/test_release.py` unpacks it and searches it for answers.
- `dist/pycontain-instructor-VERSION.tar.gz`: the whole course: the lesson sources, both builds,
  the guide (`lessons/instructor/`), the grader (`pycontain grade`, in the package, with the
  pristine learner builds it grades against), the tests and the tools.

Files are the ones git tracks (a clone's own, never a venv, a cache or a learner's outputs);
outside a git checkout, every file under the allowed folders. Each archive has one top folder,
`pycontain-learner-VERSION/`. The archives are reproducible: sorted members, owner root, the
modification time of the last commit (`SOURCE_DATE_EPOCH` if set).

VERSION is pyproject.toml's version, then `+g<commit>` unless the commit is tagged `vVERSION`,
and `.dirty` when tracked files have changes: a learner's bug report names what they ran.

Only the standard library: no venv is needed to release.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: what the learner bundle holds: files and folders at the top of the checkout
LEARNER = ("README.md", "Makefile", "pyproject.toml", ".gitignore", "docs/", "pycontain/",
           "vagrant/", "notebooks/")
#: never in the learner bundle, even inside a folder it holds
LEARNER_NEVER = ("notebooks/solutions/",)
#: what the instructor bundle leaves out: CI's own runner
INSTRUCTOR_NEVER = (".ci/",)
KINDS = ("learner", "instructor")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def tracked() -> list[str]:
    """Every file of the checkout, relative to it: git's list, or a walk without git."""
    listed = _git("ls-files", "-z")
    if listed is not None:
        return sorted(p for p in listed.split("\0") if p and (ROOT / p).is_file())
    skip = {".git", ".venv", "__pycache__", ".ipynb_checkpoints", "dist", "build", ".vagrant"}
    return sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                  if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
                  and not p.name.endswith(".egg-info"))


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in prefixes)


def members(kind: str, files: list[str]) -> list[str]:
    """The files of the `kind` bundle, out of `files`.

    >>> members("learner", ["README.md", "lessons/02-x.md", "notebooks/02-x.ipynb",
    ...                     "notebooks/solutions/02-x.ipynb", "tests/t.py", "pycontain/a.py"])
    ['README.md', 'notebooks/02-x.ipynb', 'pycontain/a.py']
    >>> members("instructor", [".ci/run", "lessons/02-x.md", "notebooks/solutions/02-x.ipynb"])
    ['lessons/02-x.md', 'notebooks/solutions/02-x.ipynb']
    """
    if kind == "learner":
        return [f for f in files if _under(f, LEARNER) and not _under(f, LEARNER_NEVER)]
    if kind == "instructor":
        return [f for f in files if not _under(f, INSTRUCTOR_NEVER)]
    raise ValueError(f"`kind` must be one of {', '.join(KINDS)}, got {kind!r}")


def version() -> str:
    """pyproject.toml's version, `+g<commit>` when that commit is not tagged vVERSION, and
    `.dirty` with uncommitted changes to tracked files."""
    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    commit = _git("rev-parse", "--short=12", "HEAD")
    if commit is None:
        return base
    tagged = f"v{base}" in (_git("tag", "--points-at", "HEAD") or "").split()
    local = [] if tagged else [f"g{commit}"]
    if _git("status", "--porcelain", "--untracked-files=no"):
        local.append("dirty")
    return base + ("+" + ".".join(local) if local else "")


def _mtime() -> int:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    return int(_git("log", "-1", "--format=%ct") or 0)


def write(kind: str, out: Path, release: str, files: list[str]) -> Path:
    """Write the `kind` archive of `files` into `out`; its path."""
    top = f"pycontain-{kind}-{release}"
    target = out / f"{top}.tar.gz"
    mtime = _mtime()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in members(kind, files):
            data = (ROOT / name).read_bytes()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.uname, info.gname = len(data), mtime, "root", "root"
            info.mode = 0o755 if os.access(ROOT / name, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    out.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime,
                                                     filename="") as gz:
        gz.write(buffer.getvalue())
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="where to write (dist/)")
    parser.add_argument("--version", help="the release's version (default: see the module doc)")
    args = parser.parse_args(argv)
    files = tracked()
    if not any(f.startswith("notebooks/solutions/") for f in files):
        print("release.py: notebooks/solutions/ is empty: run `make notebooks` first",
              file=sys.stderr)
        return 2
    release = args.version or version()
    for kind in KINDS:
        path = write(kind, Path(args.out), release, files)
        print(f"wrote {path} ({len(members(kind, files))} files, "
              f"{path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
