"""TVM's runtime libraries for a board's architecture, taken from PyPI's wheels of exactly the apache-tvm
and apache-tvm-ffi versions installed here (their pins live in pyproject.toml only), so that the libraries
on the board and the headers we compile the native programs against are one release.

`python -m rnnx.edge.tvm_runtime aarch64` downloads them once, at install time (install.sh runs it); then
`locate("aarch64")` finds them in `$RNNX_HOME` (default ~/.cache/rnnx) under `tvm-runtime/aarch64/`.
"""
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import RnnxError
from ..fileio import atomic_directory, rnnx_home

WHEEL_PLATFORMS = {"aarch64": "manylinux_2_28_aarch64"}  # PyPI has no riscv64 wheel (TOOLCHAIN-NOTES)
LIBRARIES = {"apache-tvm": "tvm/lib/libtvm_runtime.so", "apache-tvm-ffi": "tvm_ffi/lib/libtvm_ffi.so"}
VERSIONS = "versions.json"  # in the cache directory: the releases its libraries come from


def versions() -> dict[str, str]:
    """The installed release of each distribution whose runtime library a board needs."""
    return {dist: importlib.metadata.version(dist) for dist in LIBRARIES}


def cache_dir(arch: str) -> Path:
    return rnnx_home() / "tvm-runtime" / arch


def locate(arch: str) -> Path:
    """The directory holding libtvm_runtime.so and libtvm_ffi.so for `arch`, of the installed versions."""
    _check_arch(arch)
    path = cache_dir(arch)
    if not _is_current(path):
        raise RnnxError(f"TVM runtime libraries for {arch} ({_pins()}) are not in {path}: "
                        f"run `{Path(sys.executable).name} -m rnnx.edge.tvm_runtime {arch}`")
    return path


def include_dirs() -> list[Path]:
    """The installed wheels' C++ headers (TVM, TVM FFI, dlpack): the same releases as `locate`'s libraries."""
    packages = [Path(importlib.util.find_spec(name).origin).parent for name in ("tvm", "tvm_ffi")]
    return [package / "include" for package in packages]


def install(arch: str) -> Path:
    """Download the wheels for `arch` and keep their two runtime libraries; nothing to do if present."""
    _check_arch(arch)
    path = cache_dir(arch)
    if _is_current(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as wheels, atomic_directory(path, VERSIONS) as tmp:
        pins = [f"{dist}=={version}" for dist, version in versions().items()]
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                               "--only-binary=:all:", "--platform", WHEEL_PLATFORMS[arch], "--python-version", "3.11",
                               "--implementation", "cp", "--no-deps", "-d", wheels, *pins],
                              capture_output=True, text=True)
        if done.returncode:
            raise RnnxError(f"pip download of {' '.join(pins)} for {arch} failed: "
                            f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
        for dist, member in LIBRARIES.items():
            wheel, = Path(wheels).glob(dist.replace("-", "_") + "-*.whl")
            with zipfile.ZipFile(wheel) as z:
                (tmp / Path(member).name).write_bytes(z.read(member))
        (tmp / VERSIONS).write_text(json.dumps(versions()) + "\n")
    return path


def _is_current(path: Path) -> bool:
    try:
        recorded = json.loads((path / VERSIONS).read_text())
    except (OSError, ValueError):
        return False
    return recorded == versions() and all((path / Path(m).name).is_file() for m in LIBRARIES.values())


def _check_arch(arch: str) -> None:
    if arch not in WHEEL_PLATFORMS:
        raise RnnxError(f"PyPI has no TVM runtime wheel for {arch}; architectures: {', '.join(WHEEL_PLATFORMS)}")


def _pins() -> str:
    return ", ".join(f"{dist} {version}" for dist, version in versions().items())


if __name__ == "__main__":
    try:
        print(install(*sys.argv[1:2] or ["aarch64"]))
    except RnnxError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
