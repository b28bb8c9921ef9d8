"""Seeded cases for every op, drawn from its declaration's sample inputs, in the regimes the tests exercise."""
import torch

from rnnx.ops import OPS

CHUNK = 16          # small blocks, so short sequences already span several


def make_case(op_name: str, T: int, *, B: int = 2, H: int = 2, D: int = 8, seed: int = 0, regime: str = "typical",
              dtype=torch.float32, with_state: bool = True):
    """Returns `(inputs, state, attrs)` for `OPS[op_name]`'s forms and reference: a random state that some
    earlier tokens could have left behind, or the initial state."""
    op, gen = OPS[op_name], torch.Generator().manual_seed(seed)
    inputs, attrs = op.sample_inputs(B, T, H, D, D, dtype, gen, regime)
    dims = op.dims(inputs, attrs)
    state = tuple(s.sample(dims, gen) for s in op.state) if with_state else op.initial_state(dims)
    return inputs, state, attrs | {"chunk_size": CHUNK}
