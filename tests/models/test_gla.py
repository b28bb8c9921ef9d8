"""A user's GLA-style model (a decay per key dimension computed from the input, `tests/models/gla.py`): its
export keeps the op as `ai.rnnx` in every flavor and matches PyTorch, and compiled for the host (and, where
the cross toolchain and qemu are here, for the Raspberry Pi 5) it passes verify."""
import shutil

import onnx
import pytest

from rnnx.export import export_model
from rnnx.packaging import compile_export
from rnnx.targets import get_target
from rnnx.verify import verify, verify_export, verify_emulated

from .gla import source


@pytest.fixture(scope="module")
def gla(tmp_path_factory):
    """`gla(flavor="portable", target=None)`: the model's export in `flavor`, or its artifact for `target`."""
    made = {}

    def get(flavor="portable", target=None):
        if (flavor, target) not in made:
            out = tmp_path_factory.mktemp(f"gla-{flavor}-{target or 'export'}") / "out"
            if target is None:
                export_model(source(), out, flavor=flavor)
            else:
                compile_export(get(flavor), target, out)
            made[flavor, target] = out
        return made[flavor, target]
    return get


@pytest.mark.parametrize("flavor", ["portable", "standard", "ort"])
def test_export_keeps_the_per_key_op_as_ai_rnnx_and_matches_pytorch(gla, flavor):
    out = gla(flavor)
    for graph in ("prefill", "step"):
        model = onnx.load(out / f"{graph}.onnx")
        assert [(n.domain, n.op_type) for n in model.graph.node if n.op_type in ("decay_linear_attention",
                                                                                   "LinearAttention")] == [
            ("ai.rnnx", "decay_linear_attention")]
        assert [f.name for f in model.functions] == ["decay_linear_attention"]
    _, checks = verify_export(out, prompt=40, steps=8, stream=64)
    assert [c.name for c in checks if not c.passed] == []


def test_compiled_for_host_it_passes_verify(gla):
    _, checks = verify(gla(target="host"), prompt=70, steps=8, stream=200)
    assert checks and [c.name for c in checks if not c.passed] == []


def test_compiled_for_a_raspberry_pi_5_it_passes_verify_emulated(gla):
    board = get_target("raspberry-pi-5")
    if not (board.toolchain.find() and shutil.which(board.emulator[0])):
        pytest.skip(f"needs {board.toolchain.cxx} and {board.emulator[0]} (Debian: {' '.join(board.needs())})")
    _, checks = verify_emulated(gla(target="raspberry-pi-5"))
    assert checks and [c.name for c in checks if not c.passed] == []
