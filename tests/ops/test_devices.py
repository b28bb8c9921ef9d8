"""The forms build every tensor on their inputs' device: run on `meta` tensors, they give the declared
output and state shapes and dtypes."""
import pytest
import torch

from rnnx.ops import MODES, OPS

from .cases import CHUNK, make_case


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op_name", sorted(OPS))
def test_form_runs_on_meta_tensors(op_name, mode, dtype):
    op = OPS[op_name]
    inputs, state, attrs = make_case(op_name, 2 * CHUNK + 3, dtype=dtype)
    inputs, state = tuple(x.to("meta") for x in inputs), tuple(s.to("meta") for s in state)
    o, *new_state = op.call(op.forms[mode], *inputs, *state, **attrs)
    like = inputs[op.inputs.index(op.output_like)]
    assert (o.device.type, o.shape, o.dtype) == ("meta", like.shape, dtype)
    assert [(s.device.type, s.shape, s.dtype) for s in new_state] == [("meta", s.shape, s.dtype) for s in state]
