"""The whole state is the contract: models whose own torch code carries state (a causal conv's last inputs,
with and without an rnnx op beside it) list it in the manifest with its owner, and every compiled packaging
carries it (the compiler's in-place copies, `rnnx.compiler.state`); what cannot be carried is refused."""
import shutil

import numpy as np
import onnx
import pytest
import torch
import tvm
from onnx import TensorProto, helper
from tvm import relax

from rnnx.compiler import import_onnx, pipeline
from rnnx.errors import RnnxError
from rnnx.export import export_model, read_manifest
from rnnx.export.graphs import export_graph, model_signature
from rnnx.export.source import load_model
from rnnx.numerics import compare
from rnnx.packaging import compile_export
from rnnx.runtime import Session
from rnnx.runtime.session import vm_entry
from rnnx.targets import get_target
from rnnx.verify import verify, verify_emulated
from tests.models.stateful import source
from tests.runtime.test_session import assert_steps_allocate_nothing
from tests.runtime.test_session import vm_allocations  # noqa: F401  (the fixture counting the VM's allocations)

SOURCES = {"conv": source("conv_lm"), "conv+op": source("conv_attention_lm")}
STATE = {  # name -> (shape, owner)
    "conv": {"conv": ([1, 3, 64], "model")},
    "conv+op": {"conv": ([1, 3, 64], "model"), "attention": ([1, 2, 32, 32], "decay_linear_attention")},
}
BOARDS = ["raspberry-pi-5", "riscv64", "cortex-m4f"]


@pytest.fixture(scope="module")
def stateful(tmp_path_factory):
    """`stateful(model, target=None)`: the model's export (target None) or its artifact, each made once."""
    made = {}

    def get(model, target=None):
        if (model, target) not in made:
            out = tmp_path_factory.mktemp(f"{model}-{target or 'export'}") / "out"
            if target is None:
                export_model(SOURCES[model], out)
            else:
                compile_export(get(model), target, out)
            made[model, target] = out
        return made[model, target]
    return get


@pytest.mark.parametrize("model", SOURCES)
def test_the_manifest_lists_every_state_tensor_with_its_owner(stateful, model):
    state = read_manifest(stateful(model)).state
    assert {s.name: (s.shape, s.owner) for s in state} == STATE[model]
    assert all((s.past, s.present, s.dtype, s.bytes) == (f"past_{s.name}", f"present_{s.name}", "float32",
                                                         4 * int(np.prod(s.shape))) for s in state)


def test_owners_are_the_same_in_every_flavor(tmp_path):
    state = export_model(SOURCES["conv+op"], tmp_path / "ort", flavor="ort").state  # no ai.rnnx node left
    assert {s.name: s.owner for s in state} == {n: owner for n, (_, owner) in STATE["conv+op"].items()}


@pytest.mark.parametrize("model", SOURCES)
def test_compiled_for_host_it_passes_verify(stateful, model):
    _, checks = verify(stateful(model, "host"))
    assert [c.name for c in checks if not c.passed] == []


@pytest.mark.parametrize("model", SOURCES)
def test_a_session_carries_the_conv_state_and_saves_it(stateful, model, tmp_path):
    tokens = np.random.default_rng(1).integers(0, 256, 24)
    with torch.no_grad():
        logits, expected = load_model(SOURCES[model])(torch.from_numpy(tokens)[None], None, mode="chunk")
    session = Session(stateful(model, "host"))
    session.prefill(tokens[:10])
    steps = np.stack([session.step(int(t)) for t in tokens[10:20]], 1)
    assert compare(torch.from_numpy(steps), logits[:, 10:20]).passed
    session.save_state(tmp_path / "state.npz")
    rest = [session.step(int(t)) for t in tokens[20:]]
    for name, value in session.state.items():  # after all 24 tokens: the conv holds the last 3 inputs
        assert compare(torch.from_numpy(value), expected[name]).passed, name

    other = Session(stateful(model, "host"))
    other.load_state(tmp_path / "state.npz")
    assert all(np.array_equal(other.step(int(t)), r) for t, r in zip(tokens[20:], rest))
    session.reset()
    assert not session.state["conv"].any()


def test_a_step_with_a_copied_state_allocates_nothing(stateful, vm_allocations, tmp_path):  # noqa: F811
    assert_steps_allocate_nothing(stateful("conv+op", "host"), vm_allocations, tmp_path)


@pytest.mark.parametrize("target", BOARDS)
@pytest.mark.parametrize("model", SOURCES)
def test_compiled_for_a_board_it_passes_verify_emulated(stateful, model, target):
    board = get_target(target)
    if not (board.toolchain.find() and shutil.which(board.emulator[0])):
        pytest.skip(f"needs {board.toolchain.cxx} and {board.emulator[0]} (Debian: {' '.join(board.needs())})")
    _, checks = verify_emulated(stateful(model, target))
    assert checks and [c.name for c in checks if not c.passed] == []


@pytest.mark.parametrize("graph, present", [("step", r"\[1, 3, 64\]"), ("prefill", r"\[1, 2 \+ \w+, 64\]")])
def test_a_state_that_changes_shape_is_refused_naming_it(graph, present):
    model = load_model(source("growing_cache_lm"))
    proto = export_graph(model, graph, batch_size=1, sig=model_signature(model, 1))
    helper.set_model_props(proto, {"rnnx_graph": graph})  # as `rnnx export` marks it
    with pytest.raises(RnnxError, match=f"the {graph} graph's state output present_cache is float32{present}, but its "
                                        r"input past_cache is float32\[1, 2, 64\]"):
        import_onnx(proto)


def test_compiling_a_growing_cache_is_refused_naming_it(tmp_path):
    export_model(source("growing_cache_lm"), tmp_path / "export")
    with pytest.raises(RnnxError, match="present_cache"):
        compile_export(tmp_path / "export", "host", tmp_path / "artifact")
    assert not (tmp_path / "artifact").exists()


def _graph(nodes, inputs, outputs) -> onnx.ModelProto:
    value = lambda name, dtype, shape: helper.make_tensor_value_info(name, dtype, shape)  # noqa: E731
    graph = helper.make_graph(nodes, "g", [value(*i) for i in inputs], [value(*o) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_a_present_without_its_past_and_a_dynamic_state_are_refused():
    f32 = TensorProto.FLOAT
    orphan = _graph([helper.make_node("Neg", ["x"], ["present_extra"])], [("x", f32, [1, 4])],
                    [("present_extra", f32, [1, 4])])
    with pytest.raises(RnnxError, match="output present_extra has no input past_extra"):
        import_onnx(orphan)
    dynamic = _graph([helper.make_node("Neg", ["past_s"], ["present_s"])], [("past_s", f32, ["N", 4])],
                     [("present_s", f32, ["N", 4])])
    with pytest.raises(RnnxError, match=r"input past_s has the dynamic shape float32\[N, 4\]"):
        import_onnx(dynamic)


def test_state_read_by_another_present_is_read_before_it_is_overwritten():
    """A shift register (`present_b = past_a` while `a` takes the new input) and a position counter: each
    present is copied into its past only after every read of the old values, and the outputs are the inputs'
    buffers."""
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    proto = _graph(
        [helper.make_node("Add", ["x", "past_b"], ["y"]), helper.make_node("Identity", ["x"], ["present_a"]),
         helper.make_node("Identity", ["past_a"], ["present_b"]),
         helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", i64, [], [1])),
         helper.make_node("Add", ["past_position", "one"], ["present_position"])],
        [("x", f32, [1, 4]), ("past_a", f32, [1, 4]), ("past_b", f32, [1, 4]), ("past_position", i64, [])],
        [("y", f32, [1, 4]), ("present_a", f32, [1, 4]), ("present_b", f32, [1, 4]), ("present_position", i64, [])])
    target = tvm.target.Target(get_target("host").resolved())
    executable = relax.build(import_onnx(proto), target=target, relax_pipeline=pipeline(target), exec_mode="compiled")
    main, workspace = vm_entry(relax.VirtualMachine(executable, tvm.cpu()))
    inputs = [np.arange(4, dtype="float32")[None] + 10 * i for i in range(3)] + [np.array(5)]
    state = [tvm.runtime.tensor(v) for v in inputs[1:]]
    for call in range(2):
        x, (a, b, position) = inputs[0] + 100 * call, [s.numpy() for s in state]
        y, *present = main(tvm.runtime.tensor(x), *state, *workspace)
        np.testing.assert_array_equal(y.numpy(), x + b)
        for got, want in zip([s.numpy() for s in state], [x, a, position + 1]):
            np.testing.assert_array_equal(got, want)
        assert [_address(p) for p in present] == [_address(s) for s in state]


def _address(tensor) -> int:
    return np.from_dlpack(tensor).__array_interface__["data"][0]
