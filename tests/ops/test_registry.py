"""The registry: one declaration per op gives its torch op, state layout and errors."""
import pytest
import torch
from torch.export import export

from rnnx import ops
from rnnx.ops import MODES, OPS

from .cases import make_case


def test_the_five_ops_are_registered_with_three_forms():
    assert set(OPS) == {"decay_linear_attention", "gated_delta_rule", "aaren", "sliding_window_attention",
                        "causal_conv1d"}
    for op in OPS.values():
        assert set(op.forms) == set(MODES) and op.reference is not None


def test_state_layout_and_bytes():
    dims = dict(B=1, H=1, Dk=64, Dv=64, window=128, D=64, W1=3)
    assert OPS["decay_linear_attention"].state_bytes(dims) == 64 * 64 * 4
    assert OPS["causal_conv1d"].state_bytes(dims) == 64 * 3 * 4
    assert OPS["aaren"].state_bytes(dims) == (1 + 1 + 64) * 4
    assert OPS["sliding_window_attention"].state_bytes(dims) == 2 * 128 * 64 * 4 + 8
    m, u, w = OPS["aaren"].initial_state(dict(B=2, H=3, Dk=4, Dv=5))
    assert m.shape == (2, 3) and torch.isinf(m).all() and u.eq(0).all() and w.shape == (2, 3, 5)


@pytest.mark.parametrize("op_name", sorted(OPS))
def test_torch_export_sees_one_node_per_op(op_name):
    inputs, state, attrs = make_case(op_name, 5)

    class Wrapper(torch.nn.Module):
        def forward(self, *args):
            return OPS[op_name](*args[: len(inputs)], state=args[len(inputs):], mode="chunk", **attrs)

    graph = export(Wrapper(), inputs + state).graph
    targets = [n.target for n in graph.nodes if n.op == "call_function" and hasattr(n.target, "namespace")]
    assert [t.name() for t in targets] == [f"rnnx::{op_name}"]


def test_bad_mode_is_named():
    q = torch.randn(1, 3, 2, 4)
    with pytest.raises(ValueError, match="decay_linear_attention: mode must be one of .* got 'fast'"):
        ops.decay_linear_attention(q, q, q, torch.zeros(2), mode="fast")


def test_bad_shapes_are_named():
    q = torch.randn(1, 3, 2, 4)
    with pytest.raises(ValueError, match="state state must have shape"):
        ops.decay_linear_attention(q, q, q, torch.zeros(2), state=torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="decay must be per head"):
        ops.decay_linear_attention(q, q, q, torch.zeros(3))
    with pytest.raises(ValueError, match="aaren: q must be one learned query per head"):
        ops.aaren(q, q, q)
    with pytest.raises(ValueError, match="k and v must be"):
        ops.sliding_window_attention(q, q, q[:, :2], window=4)
    x = torch.randn(1, 3, 6)
    with pytest.raises(ValueError, match=r"causal_conv1d: x must be \(B, T, D\), weight \(D, W\) and bias"):
        ops.causal_conv1d(x, torch.randn(5, 4), torch.zeros(6))
    with pytest.raises(ValueError, match="width W must be at least 2"):
        ops.causal_conv1d(x, torch.randn(6, 1), torch.zeros(6))
    with pytest.raises(ValueError, match=r"state state must have shape \(1, 6, 3\)"):
        ops.causal_conv1d(x, torch.randn(6, 4), torch.zeros(6), state=torch.zeros(1, 6, 4))
    with pytest.raises(ValueError, match="activation must be one of"):
        ops.causal_conv1d(x, torch.randn(6, 4), torch.zeros(6), activation="gelu")
