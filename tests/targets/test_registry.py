"""The target registry and cross-compiling for Linux boards: every board target compiles, to code of its
machine; a missing cross compiler is named with the package that provides it."""
import json
import os
import subprocess
import sys
import tarfile

import pytest

from rnnx.packaging import compile_export
from rnnx.errors import RnnxError
from rnnx.runtime import Session
from rnnx.targets import TARGETS

BOARDS = ["host", "x86-64-avx2", "raspberry-pi-4", "raspberry-pi-5", "jetson-orin-cpu", "android-arm64",
          "riscv64", "riscv64-rvv"]
ELF_MACHINE = {"x86_64": 62, "aarch64": 183, "riscv64": 243}


def _elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    return int.from_bytes(data[18:20], "little")


def test_registry_lists_the_boards_with_what_each_needs():
    out = subprocess.run([sys.executable, "-m", "rnnx", "targets", "--json"], capture_output=True, text=True, check=True)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert set(BOARDS) <= set(rows)
    for name in BOARDS[2:]:
        assert rows[name]["tvm"]["mtriple"] and rows[name]["needs"] and rows[name]["rpc_key"], rows[name]
    assert rows["raspberry-pi-5"]["tvm"]["mcpu"] == "cortex-a76" and "+neon" in rows["raspberry-pi-5"]["tvm"]["mattr"]
    assert "+v" in rows["riscv64-rvv"]["tvm"]["mattr"] and "+v" not in rows["riscv64"]["tvm"]["mattr"]


@pytest.mark.parametrize("target", [t for t in BOARDS if TARGETS[t].packaging == "library"])
def test_vm_target_compiles_to_libraries_of_its_machine(artifacts, target):
    artifact = artifacts("ref-tiny", target)
    for library in json.loads((artifact / "artifact.json").read_text())["libraries"].values():
        head = (artifact / library).read_bytes()[:20]
        assert _elf_machine(head) == ELF_MACHINE[TARGETS[target].arch]


def test_android_without_ndk_is_a_tar_of_aarch64_objects_and_the_link_command(tiny_export, tmp_path, monkeypatch):
    monkeypatch.delenv("ANDROID_NDK_HOME", raising=False)
    manifest = compile_export(tiny_export, "android-arm64", tmp_path / "artifact")
    assert manifest.libraries == {"prefill": "prefill.tar", "step": "step.tar"}
    with tarfile.open(tmp_path / "artifact" / "step.tar") as tar:
        names = tar.getnames()
        assert names and all(_elf_machine(tar.extractfile(n).read(20)) == ELF_MACHINE["aarch64"] for n in names)
    assert all(n in manifest.link["step"] for n in names)
    assert "-shared" in manifest.link["step"] and "aarch64-linux-android" in manifest.link["step"]


def test_missing_cross_compiler_names_the_package_and_exits_2(tiny_export, tmp_path):
    env = os.environ | {"PATH": os.path.dirname(sys.executable)}  # python, but no cross compiler
    out = subprocess.run([sys.executable, "-m", "rnnx", "compile", str(tiny_export), "--target", "raspberry-pi-4",
                          "-o", str(tmp_path / "artifact")], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "aarch64-linux-gnu-g++ not found" in out.stderr and "apt-get install g++-aarch64-linux-gnu" in out.stderr
    assert not (tmp_path / "artifact").exists()


def test_session_refuses_another_machines_artifact_and_points_to_emulation(artifacts):
    with pytest.raises(RnnxError, match="cannot run on this x86_64 machine.*--emulate"):
        Session(artifacts("ref-tiny", "raspberry-pi-5"))


def test_unknown_target_lists_the_known_ones(tiny_export, tmp_path):
    with pytest.raises(RnnxError, match="unknown target 'pi-9'.*raspberry-pi-5"):
        compile_export(tiny_export, "pi-9", tmp_path / "artifact")


BLOCK_COMPILER = """
import sys
class Block:  # a board's Python: TVM's runtime and numpy, none of the compiler's stack
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx", "onnxruntime", "onnxscript"):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
from rnnx.runtime import Session
print(Session(sys.argv[1]).step(3).shape)
"""


def test_python_runtime_path_needs_neither_torch_nor_onnx(artifacts):
    out = subprocess.run([sys.executable, "-c", BLOCK_COMPILER, str(artifacts("ref-tiny"))],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "(1, 256)", out.stderr[-2000:]


def test_missing_emulator_is_named_with_its_package_and_exits_2(artifacts):
    env = os.environ | {"PATH": os.path.dirname(sys.executable)}  # python, but no qemu
    out = subprocess.run([sys.executable, "-m", "rnnx", "verify", str(artifacts("ref-tiny", "riscv64")), "--emulate"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "qemu-riscv64 not found; to install it: apt-get install qemu-user" in out.stderr
