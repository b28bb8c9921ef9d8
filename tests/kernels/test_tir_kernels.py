"""The hand-written TIR kernels (rnnx/kernels), compiled alone for the host CPU, against the fp64 reference.

Each PrimFunc is called as `relax.call_tir_inplace` will call it: `(*inputs, *state, o)`, the state
tensors updated in place, `o` (filled with NaN beforehand) written fully. A `sequence` kernel is compiled
once with a symbolic T and run at every length.
"""
import functools
import subprocess
import sys

import numpy as np
import pytest
import torch

import rnnx.kernels  # noqa: F401  (registers the TIR lowerings)
from rnnx.lowerings import BACKENDS, choose, lowerings
from rnnx.ops import OPS
from rnnx.ops.sliding_window_attention.samples import WINDOW
from rnnx.targets import get_target

from ..ops.cases import CHUNK, make_case
from ..ops.test_forms import assert_matches
from ..ops.test_per_key_decay import mixed_case, per_key_case

tvm = pytest.importorskip("tvm")
cc = pytest.importorskip("tvm.support.cc")

OP_NAMES = sorted(OPS)
LENGTHS = [1, CHUNK - 1, CHUNK + 1, 37, 200]
# (op, decay given per token, per head or per key dimension); the softmax ops have no decay
DECAYS = {"decay_linear_attention": ["per_token", "per_head", "per_key"], "gated_delta_rule": ["per_token", "per_head"]}
VARIANTS = [(op, d) for op in OP_NAMES for d in DECAYS.get(op, ["none"])]
IDS = [f"{op}-{d}" for op, d in VARIANTS]
# every registered generator by op and function name: `step`, `sequence` (the chunked prefill of the linear
# ops; `sequence_per_key` for a per-key decay) and the linear ops' token-by-token alternative `sequence_recurrent`
GENERATORS = {(op, lw.fn.__name__): lw.fn for op in OP_NAMES for kind in BACKENDS["tir"]
              for lw in lowerings("tir", op, kind)}


def like(op_name, inputs):
    """The input whose shape the kernel's output `o` has (`v`; a conv's `x`)."""
    return inputs[OPS[op_name].inputs.index(OPS[op_name].output_like)]


def case(op_name, decay, T, **kwargs):
    """`make_case` inputs, with the linear ops' decay reduced to one value per head for "per_head" or drawn
    per key dimension for "per_key"."""
    if decay == "per_key":
        return per_key_case(T, **kwargs)
    inputs, state, attrs = make_case(op_name, T, **kwargs)
    if decay == "per_head":
        i = OPS[op_name].inputs.index("decay" if "decay" in OPS[op_name].inputs else "g")
        inputs = inputs[:i] + (inputs[i][0, 0].clone(),) + inputs[i + 1:]
    return inputs, state, attrs


def shapes(inputs, state, t_axis=None):
    """The generators' `shapes`: inputs then state, with `t_axis` (if given) as the T of the per-token
    inputs (rank >= 3: aaren's query (H, Dk) and a per-head decay (H,) have no T)."""
    return [tuple(t_axis if t_axis is not None and x.dim() >= 3 and axis == 1 else d for axis, d in enumerate(x.shape))
            for x in inputs] + [tuple(s.shape) for s in state]


# every sequence generator with the decays its `when` admits
SEQUENCE_KINDS = [(op, d, lw.fn.__name__) for op, d in VARIANTS for lw in lowerings("tir", op, "sequence")
                  if lw.applies(None, shapes(*case(op, d, 2)[:2]))]
SEQUENCE_IDS = [f"{op}-{d}-{kind}" for op, d, kind in SEQUENCE_KINDS]
DECAYING = [(c, i) for c, i in zip(SEQUENCE_KINDS, SEQUENCE_IDS) if c[1] in ("per_token", "per_key")]


@functools.cache
def compiled(op_name, kind, shape_key, attr_key):
    """Compile the registered generator `kind` (its function name) of `op_name` for the host; cached, so one
    build of a symbolic-T kernel serves every T."""
    shape_list = [tuple(tvm.tirx.Var("T", "int64") if d == "T" else d for d in s) for s in shape_key]
    func = GENERATORS[op_name, kind](shape_list, dict(attr_key))
    assert isinstance(func, tvm.tirx.PrimFunc)
    return tvm.compile(tvm.IRModule({"main": func}), target={"kind": "llvm"})["main"]


def kernel(op_name, kind, inputs, state, attrs):
    """The generator named `kind`, or for a kind of lowering (`step`, `sequence`) the one the compiler
    chooses at these shapes, compiled."""
    if kind in BACKENDS["tir"]:
        kind = choose("tir", op_name, kind, None, shapes(inputs, state)).__name__
    key = tuple(shapes(inputs, state, None if kind == "step" else "T"))  # "T": made a tvm Var when compiled
    return compiled(op_name, kind, key, tuple(sorted(attrs.items())))


def to_tvm(x: torch.Tensor):
    return tvm.runtime.tensor(np.ascontiguousarray(x.numpy()))


def call(op_name, fn, inputs, state):
    """Run a kernel once; returns `(o, state)` as torch tensors, the state read back from the buffers
    that were passed in (so an update that is not in place shows up as a mismatch)."""
    args = [to_tvm(x) for x in inputs + tuple(state)]
    o = tvm.runtime.tensor(np.full(like(op_name, inputs).shape, np.nan, dtype="float32"))
    fn(*args, o)
    return torch.from_numpy(o.numpy()), tuple(torch.from_numpy(a.numpy()) for a in args[len(inputs):])


def reference(op_name, inputs, state, attrs):
    o, *s = OPS[op_name].call(OPS[op_name].reference, *inputs, *state, **attrs)
    return o, tuple(s)


@pytest.mark.parametrize("with_state", [True, False], ids=["random_state", "empty_state"])
@pytest.mark.parametrize(("op_name", "decay"), VARIANTS, ids=IDS)
def test_step_kernel_matches_fp64_reference(op_name, decay, with_state):
    inputs, state, attrs = case(op_name, decay, 1, with_state=with_state)
    fn = kernel(op_name, "step", inputs, state, attrs)
    assert_matches(call(op_name, fn, inputs, state), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize(("op_name", "decay", "kind"), SEQUENCE_KINDS, ids=SEQUENCE_IDS)
def test_symbolic_length_sequence_kernel_matches_fp64_reference(op_name, decay, kind, T):
    inputs, state, attrs = case(op_name, decay, T)
    fn = kernel(op_name, kind, inputs, state, attrs)
    assert_matches(call(op_name, fn, inputs, state), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize(("op_name", "decay"), VARIANTS, ids=IDS)
def test_sequence_kernel_from_empty_state_matches_fp64_reference(op_name, decay):
    inputs, state, attrs = case(op_name, decay, CHUNK + 3, with_state=False)
    fn = kernel(op_name, "sequence", inputs, state, attrs)
    assert_matches(call(op_name, fn, inputs, state), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("regime", ["near_zero", "very_negative"])
@pytest.mark.parametrize(("op_name", "decay", "kind"), [c for c, _ in DECAYING], ids=[i for _, i in DECAYING])
def test_sequence_kernel_with_extreme_decays_matches_fp64_reference(op_name, decay, kind, regime):
    inputs, state, attrs = case(op_name, decay, 200, regime=regime)
    fn = kernel(op_name, kind, inputs, state, attrs)
    assert_matches(call(op_name, fn, inputs, state), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("kind", [k for op, d, k in SEQUENCE_KINDS if d == "per_key"])
def test_per_key_sequence_kernel_with_decays_mixing_regimes_matches_fp64_reference(kind):
    """Half the keys of a head nearly keep their rows while the others forget theirs, swapping inside a block."""
    inputs, state, attrs = mixed_case(200)
    fn = kernel("decay_linear_attention", kind, inputs, state, attrs)
    assert_matches(call("decay_linear_attention", fn, inputs, state),
                   reference("decay_linear_attention", inputs, state, attrs))


@pytest.mark.parametrize("decay", DECAYS["decay_linear_attention"])
def test_decay_linear_attention_kernels_build_and_link_for_an_edge_board(decay, tmp_path):
    """The step and every applicable sequence kernel at a model's size (H=4, D=64, symbolic T), compiled
    for the Raspberry Pi 5 (aarch64, NEON) and linked into one library by its cross toolchain."""
    board = get_target("raspberry-pi-5")
    if not board.toolchain.find():
        pytest.skip(f"needs {board.toolchain.cxx} ({board.toolchain.install})")
    inputs, state, attrs = case("decay_linear_attention", decay, 1, H=4, D=64)
    funcs = {}
    for kind in BACKENDS["tir"]:
        t_axis = None if kind == "step" else tvm.tirx.Var("T", "int64")
        dims = shapes(inputs, state, t_axis)
        funcs |= {f"{kind}_{lw.fn.__name__}": lw.fn(dims, attrs | {"chunk_size": 64})
                  for lw in lowerings("tir", "decay_linear_attention", kind) if lw.applies(board, dims)}
    library = tvm.compile(tvm.IRModule(funcs), target=tvm.target.Target(board.resolved()))
    library.export_library(str(tmp_path / "kernels.so"), fcompile=cc.cross_compiler(board.toolchain.find()))
    assert len(funcs) == 3 and (tmp_path / "kernels.so").stat().st_size > 0


@pytest.mark.parametrize("kind", ["step", "sequence"])
def test_aaren_kernels_with_huge_scores_stay_finite_and_match_reference(kind):
    inputs, state, attrs = case("aaren", "none", 1 if kind == "step" else 200, regime="huge_scores")
    o, s = call("aaren", kernel("aaren", kind, inputs, state, attrs), inputs, state)
    assert torch.isfinite(o).all() and all(torch.isfinite(x).all() for x in s[1:])
    assert_matches((o, s), reference("aaren", inputs, state, attrs))


@pytest.mark.parametrize("kind", ["step", "sequence"])
def test_sliding_window_kernels_with_wrapping_ring_positions_match_reference(kind):
    T = 1 if kind == "step" else 2 * WINDOW + 5
    inputs, (keys, values, _), attrs = case("sliding_window_attention", "none", T)
    # a ring about to wrap, one just wrapped, one many windows in; and one still filling
    for start in ([WINDOW - 1, WINDOW], [5 * WINDOW + 3, 2]):
        state = (keys, values, torch.tensor(start))
        fn = kernel("sliding_window_attention", kind, inputs, state, attrs)
        assert_matches(call("sliding_window_attention", fn, inputs, state),
                       reference("sliding_window_attention", inputs, state, attrs))


@pytest.mark.parametrize(("op_name", "decay"), VARIANTS, ids=IDS)
def test_step_kernel_stream_of_100_tokens_with_state_in_place_matches_fp64_reference(op_name, decay):
    T = 100
    inputs, state, attrs = case(op_name, decay, T)
    per_token = [x.dim() >= 3 for x in inputs]
    token = lambda t: tuple(x[:, t:t + 1] if tok else x for x, tok in zip(inputs, per_token))  # noqa: E731
    fn = kernel(op_name, "step", token(0), state, attrs)
    state_buffers = [to_tvm(s) for s in state]   # one set of buffers, updated in place by every call
    outputs = []
    for t in range(T):
        o = tvm.runtime.tensor(np.full(like(op_name, inputs)[:, :1].shape, np.nan, dtype="float32"))
        fn(*(to_tvm(x) for x in token(t)), *state_buffers, o)
        outputs.append(torch.from_numpy(o.numpy()))
    actual = torch.cat(outputs, 1), tuple(torch.from_numpy(s.numpy()) for s in state_buffers)
    assert_matches(actual, reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("kind", ["step", "sequence"])
@pytest.mark.parametrize(("op_name", "decay"), VARIANTS, ids=IDS)
def test_kernels_at_model_sizes_and_unequal_key_value_widths_match_fp64_reference(op_name, decay, kind):
    """D = 64 (16-lane dot products, full register tiles, chunk 64) and Dv = 48 != Dk."""
    T = 1 if kind == "step" else 70
    inputs, state, attrs = case(op_name, decay, T, H=3, D=64, seed=2)
    attrs = attrs | {"chunk_size": 64}
    Dv = 48
    inputs = tuple(x[..., :Dv].contiguous() if n == "v" else x for x, n in zip(inputs, OPS[op_name].inputs))
    state = tuple(s[..., :Dv].contiguous() if spec.shape[-1] == "Dv" else s
                  for s, spec in zip(state, OPS[op_name].state))
    fn = kernel(op_name, kind, inputs, state, attrs)
    assert_matches(call(op_name, fn, inputs, state), reference(op_name, inputs, state, attrs))


def test_registering_the_kernels_does_not_import_tvm():
    code = "import sys, rnnx.kernels; assert 'tvm' not in sys.modules, 'tvm imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
