"""Training through the custom ops: the gradients the op's autograd gives equal those of its form run directly
under autograd, for every input and state tensor, from the outputs and the final state alike."""
import pytest
import torch

from rnnx.ops import OPS

from .cases import CHUNK, make_case


@pytest.mark.parametrize("mode", ["parallel", "chunk"])  # the forms training runs
@pytest.mark.parametrize("op_name", sorted(OPS))
def test_gradients_through_the_op_equal_the_forms(op_name, mode):
    op = OPS[op_name]
    inputs, state, attrs = make_case(op_name, 2 * CHUNK + 3)
    leaves = [t.clone().requires_grad_(t.is_floating_point()) for t in (*inputs, *state)]
    n = len(inputs)

    def grads(outputs):
        weights = torch.Generator().manual_seed(1)  # a fixed random cotangent for each output
        loss = sum((o * torch.randn(o.shape, generator=weights)).sum() for o in outputs if o.is_floating_point())
        return torch.autograd.grad(loss, [t for t in leaves if t.requires_grad])

    o, s = op(*leaves[:n], state=leaves[n:], mode=mode, **attrs)
    through_op = grads([o, *((s,) if isinstance(s, torch.Tensor) else s)])
    direct = grads(op.call(op.forms[mode], *leaves, **attrs))
    for i, (a, e) in enumerate(zip(through_op, direct, strict=True)):
        torch.testing.assert_close(a, e, msg=f"gradient {i}")
