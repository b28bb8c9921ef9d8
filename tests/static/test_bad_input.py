"""A missing tool, a graph the static runtime cannot run, or a bad token file: one-line RnnxErrors naming it."""
import dataclasses

import onnx
import pytest

from rnnx.compiler.importer import import_onnx
from rnnx.compiler.pipeline import pipeline
from rnnx.errors import RnnxError
from rnnx.export import read_manifest
from rnnx.static import build_linux_runner, emit_static_bundle, run_runner
from rnnx.static.emit import static_tvm_target

from .conftest import HOST_STATIC, static_target


def test_missing_cross_compiler_names_the_package(static_builds, tmp_path):
    out, sizes = static_builds("ref-tiny", "riscv64")
    riscv64 = static_target("riscv64")
    missing = dataclasses.replace(riscv64, toolchain=dataclasses.replace(riscv64.toolchain, cc="riscv64-nowhere-gcc"))
    with pytest.raises(RnnxError, match="riscv64-nowhere-gcc not found.*g\\+\\+-riscv64-linux-gnu"):
        build_linux_runner(out / sizes["bundle"], missing, tmp_path / "rnnx-run")


def test_missing_emulator_and_empty_tokens_are_named(static_builds):
    out, sizes = static_builds("ref-tiny", "riscv64")
    with pytest.raises(RnnxError, match="qemu-nowhere not found; to install it: apt-get install qemu-user"):
        run_runner(out / sizes["runner"], [1, 2], ("qemu-nowhere",))
    with pytest.raises(RnnxError, match="cannot read its inputs"):
        run_runner(out / sizes["runner"], [], static_target("riscv64").emulator)


def test_graph_with_dynamic_shapes_is_refused(exports, tmp_path):
    target = static_tvm_target(HOST_STATIC)
    with target:
        prefill = pipeline(target)(import_onnx(onnx.load(exports("ref-tiny") / "prefill.onnx")))
    with pytest.raises(RnnxError, match="dynamic shape"):
        emit_static_bundle(prefill, read_manifest(exports("ref-tiny")).signature, HOST_STATIC, [], tmp_path)


def test_step_refuses_a_token_outside_the_vocabulary_instead_of_reading_past_the_table(static_builds):
    out, sizes = static_builds("ref-tiny", "host")
    with pytest.raises(RnnxError, match="step 1 failed"):
        run_runner(out / sizes["runner"], [1, 256])
    with pytest.raises(RnnxError, match="step 0 failed"):
        run_runner(out / sizes["runner"], [-1])
