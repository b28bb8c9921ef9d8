"""Writing outputs so that a crash or a Ctrl-C never leaves a half-written file or directory behind, and
reading them back only when every file matches its recorded sha256."""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import RnnxError


def check_output(path: Path, marker: str) -> Path:
    """Fail early, before any work, if `path` cannot become our output: its parent must exist, and an
    existing `path` must be empty or hold `marker` (an earlier output of ours)."""
    path = Path(path)
    parent = path.parent.resolve()
    if not parent.is_dir():
        raise RnnxError(f"cannot write {path}: parent directory {parent} does not exist")
    if path.exists() and not (path.is_dir() and (not any(path.iterdir()) or (path / marker).exists())):
        raise RnnxError(f"refusing to overwrite {path}: it exists and is not an rnnx output")
    try:  # the real test of writability (os.access says yes to root even where the filesystem says no)
        os.rmdir(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".probe", dir=parent))
    except OSError as e:
        raise RnnxError(f"cannot write {path}: directory {parent} is not writable ({e.strerror})") from None
    return parent


@contextlib.contextmanager
def atomic_directory(path: Path, marker: str):
    """Yield a temporary directory beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    parent = check_output(path, marker)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the output should look like any other directory
    try:
        yield tmp
        if path.exists():
            old = tmp.with_suffix(".old")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_checked_manifest(directory: Path, name: str, fmt: str, what: str) -> dict:
    """The JSON manifest `name` of an rnnx output directory (`what`: "export", "artifact"), after checking
    its format tag and that every file it lists is present and matches its sha256."""
    directory = Path(directory)
    if directory.is_file():
        raise RnnxError(f"{directory} is a file; give the directory rnnx wrote")
    if not (directory / name).is_file():
        raise RnnxError(f"{directory} is not an rnnx {what}: it has no {name}")
    try:
        manifest = json.loads((directory / name).read_text())
    except json.JSONDecodeError as e:
        raise RnnxError(f"{directory / name} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        raise RnnxError(f"{directory / name} is not an rnnx {what} manifest (format {fmt})")
    for file, digest in manifest["files"].items():
        if not (directory / file).is_file():
            raise RnnxError(f"{directory / file} is listed in {name} but missing")
        if sha256(directory / file) != digest:
            raise RnnxError(f"{directory / file} does not match its sha256 in {name}: the file was changed or corrupted")
    return manifest
