"""A model with causal_conv1d before decay_linear_attention (`short_conv_attention_lm` of tests/models/stateful.py):
exported in every flavor, its conv state owned by the op and spelled as the flavor says, updated in place by
the op's kernel (no copy, a step allocates nothing), compiled for the host and for boards, and verified."""
import shutil

import onnx
import pytest

from rnnx.compiler import import_onnx
from rnnx.export import FLAVORS, export_model, read_manifest
from rnnx.packaging import compile_export
from rnnx.targets import get_target
from rnnx.verify import verify, verify_emulated
from tests.models.stateful import source
from tests.runtime.test_session import assert_steps_allocate_nothing
from tests.runtime.test_session import vm_allocations  # noqa: F401  (the fixture counting the VM's allocations)

SPELLINGS = {"portable": "ai.rnnx::causal_conv1d", "standard": "ai.onnx::CausalConvWithState",
             "ort": "com.microsoft::CausalConvWithState"}
BOARDS = ["raspberry-pi-5", "riscv64-rvv", "cortex-m4f"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`built(flavor, target=None)`: the model's export in `flavor` (target None) or its artifact, each made once."""
    made = {}

    def get(flavor, target=None):
        if (flavor, target) not in made:
            out = tmp_path_factory.mktemp(f"short-conv-{flavor}-{target or 'export'}") / "out"
            if target is None:
                export_model(source("short_conv_attention_lm"), out, flavor=flavor)
            else:
                compile_export(get(flavor), target, out)
            made[flavor, target] = out
        return made[flavor, target]
    return get


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_manifest_gives_the_conv_state_to_the_op_spelled_as_the_flavor_says(built, flavor):
    manifest = read_manifest(built(flavor))
    assert {s.name: (s.shape, s.owner) for s in manifest.state} == {
        "conv": ([1, 192, 3], "causal_conv1d"), "attention": ([1, 2, 32, 32], "decay_linear_attention")}
    assert {u.name: u.spelling for u in manifest.ops}["causal_conv1d"] == SPELLINGS[flavor]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_compiled_step_updates_the_conv_state_in_place(built, flavor):
    step = import_onnx(onnx.load(built(flavor) / "step.onnx"))
    assert [gv.name_hint for gv in step.functions if "copy_state" in gv.name_hint] == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_compiled_for_host_it_passes_verify(built, flavor):
    _, checks = verify(built(flavor, "host"), prompt=70, steps=8, stream=100)
    assert len(checks) == 7 and [c.name for c in checks if not c.passed] == []


def test_a_step_allocates_nothing(built, vm_allocations, tmp_path):  # noqa: F811
    assert_steps_allocate_nothing(built("portable", "host"), vm_allocations, tmp_path)


@pytest.mark.parametrize("target", BOARDS)
def test_compiled_for_a_board_it_passes_verify_emulated(built, target):
    board = get_target(target)
    if not (board.toolchain.find() and shutil.which(board.emulator[0])):
        pytest.skip(f"needs {board.toolchain.cxx} and {board.emulator[0]} (Debian: {' '.join(board.needs())})")
    _, checks = verify_emulated(built("portable", target))
    assert checks and [c.name for c in checks if not c.passed] == []
