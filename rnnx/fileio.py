"""Writing outputs so that a crash or a Ctrl-C never leaves a half-written file or directory behind."""
import contextlib
import hashlib
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
def atomic_file(path: Path):
    """Yield a binary file beside `path`; on success it replaces `path` in one rename, on any failure (or
    signal) it is removed. Its mode is an ordinary file's under the umask, not mkstemp's private one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_directory(path: Path, marker: str):
    """Yield a temporary directory beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    parent = check_output(path, marker)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the output should look like any other directory
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


def rnnx_home() -> Path:
    """Where rnnx keeps what outlives a command (TVM's board runtimes, crash reports): $RNNX_HOME, else
    ~/.cache/rnnx."""
    return Path(os.environ.get("RNNX_HOME") or Path.home() / ".cache" / "rnnx")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
