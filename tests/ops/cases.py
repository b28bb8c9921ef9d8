"""Seeded inputs for every op, in the regimes the tests exercise."""
import torch
import torch.nn.functional as F

from rnnx.ops import OPS

CHUNK = 16          # small blocks, so short sequences already span several
WINDOW = 24         # sliding window, not a multiple of CHUNK
DECAY_REGIMES = {"typical": (-1.0, -0.01), "near_zero": (-1e-4, 0.0), "very_negative": (-30.0, -10.0)}


def make_case(op_name: str, T: int, *, B: int = 2, H: int = 2, D: int = 8, seed: int = 0, regime: str = "typical",
              dtype=torch.float32, with_state: bool = True):
    """Returns `(inputs, state, attrs)` for `OPS[op_name]`'s forms and reference."""
    gen = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=gen)  # noqa: E731
    lo, hi = DECAY_REGIMES.get(regime, DECAY_REGIMES["typical"])
    decay = lambda *shape: lo + (hi - lo) * torch.rand(*shape, generator=gen)  # noqa: E731
    q, k, v = randn(B, T, H, D), randn(B, T, H, D), randn(B, T, H, D)
    attrs = {"scale": D ** -0.5, "chunk_size": CHUNK}
    if op_name == "decay_linear_attention":
        inputs = (q, k, v, decay(B, T, H))
    elif op_name == "gated_delta_rule":
        inputs = (q, F.normalize(k, dim=-1), v, decay(B, T, H), torch.sigmoid(randn(B, T, H)))
    elif op_name == "aaren":
        inputs = (randn(H, D) * (1e4 if regime == "huge_scores" else 1), k, v)
    else:
        inputs, attrs = (q, k, v), attrs | {"window": WINDOW}
    op = OPS[op_name]
    dims = op.dims(k, v, attrs)
    state = op.initial_state(dims)
    if with_state:
        state = tuple(_random_state(s, spec, gen) for s, spec in zip(state, op.state))
    inputs = tuple(x.to(dtype) for x in inputs)
    return inputs, state, attrs


def _random_state(s: torch.Tensor, spec, gen: torch.Generator) -> torch.Tensor:
    """A plausible state: what some earlier tokens could have left behind."""
    if spec.name == "pos":
        return torch.randint(1, 3 * WINDOW, s.shape, generator=gen)
    if spec.name == "denominator":
        return 1 + torch.rand(s.shape, generator=gen)
    return 0.5 * torch.randn(s.shape, generator=gen)
