"""Token mixers: one per rnnx op, each `forward(x (B, T, d), state, mode) -> (y (B, T, d), state)`."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from .config import ModelConfig
from .layers import declare_columns


class Mixer(nn.Module):
    """Projections around one rnnx op; subclasses name the op and compute its inputs."""

    op_name: str

    def __init__(self, cfg: ModelConfig, layer: int, n_proj: int, n_head_proj: int = 0):
        super().__init__()
        self.cfg, self.layer = cfg, layer
        # the per-head scalars (β, the decay's dt) drive the recurrence
        heads, scalars = n_proj * cfg.heads * cfg.head_dim, n_head_proj * cfg.heads
        self.proj = declare_columns(nn.Linear(cfg.d_model, heads + scalars, bias=False),
                                    {"heads": heads, "scalars": scalars}, recurrence={"scalars"})
        self.out = nn.Linear(cfg.heads * cfg.head_dim, cfg.d_model, bias=False)

    def split(self, x: torch.Tensor, n_proj: int):
        """Project `x (B, T, d)` into `n_proj` tensors `(B, T, H, D)` and the per-head scalars `(B, T, H)`."""
        B, T, _ = x.shape
        H, D = self.cfg.heads, self.cfg.head_dim
        y = self.proj(x)
        heads = y[..., : n_proj * H * D].unflatten(-1, (n_proj, H, D)).unbind(2)
        scalars = y[..., n_proj * H * D:].unflatten(-1, (-1, H)).unbind(2)
        return heads, scalars

    def init_(self, gen: torch.Generator):
        """Seeded initialisation of the mixer's own parameters (the linear layers are done by the model)."""

    def initial_state(self, batch_size: int):
        op = ops.OPS[self.op_name]
        dims = dict(B=batch_size, H=self.cfg.heads, Dk=self.cfg.head_dim, Dv=self.cfg.head_dim, window=self.cfg.window)
        state = op.initial_state(dims)
        return state[0] if op.state_type is None else op.state_type(*state)

    def finish(self, o: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        if gate is not None:  # per-head RMS norm and an output gate, as TransNormerLLM and Gated DeltaNet do
            o = F.rms_norm(o, (o.shape[-1],), eps=self.cfg.norm_eps) * torch.sigmoid(gate)
        return self.out(o.flatten(-2))


class DecayLinearAttentionMixer(Mixer):
    """TransNormerLLM-style: SiLU feature maps on q and k, a fixed decay per head and layer."""

    op_name = "decay_linear_attention"

    def __init__(self, cfg, layer):
        super().__init__(cfg, layer, n_proj=4)
        self.register_buffer("decay", ops.transnormer_decay(cfg.heads, layer, cfg.layers), persistent=False)

    def forward(self, x, state, mode):
        (q, k, v, gate), _ = self.split(x, 4)
        o, state = ops.decay_linear_attention(F.silu(q), F.silu(k), v, self.decay, state=state, mode=mode,
                                              chunk_size=self.cfg.chunk_size)
        return self.finish(o, gate), state


class GatedDeltaRuleMixer(Mixer):
    """Gated DeltaNet-style: L2-normalised q and k, β = σ(W_β x), g = -exp(A) · softplus(W_a x + dt_bias)."""

    op_name = "gated_delta_rule"

    def __init__(self, cfg, layer):
        super().__init__(cfg, layer, n_proj=4, n_head_proj=2)
        self.A_log = nn.Parameter(torch.zeros(cfg.heads))
        self.dt_bias = nn.Parameter(torch.zeros(cfg.heads))

    def init_(self, gen):
        """Gated DeltaNet's initialisation: A ~ U(1, 16), dt ~ logU(1e-3, 1e-1) stored as softplus⁻¹(dt)."""
        H = self.cfg.heads
        self.A_log.data = torch.empty(H).uniform_(1, 16, generator=gen).log()
        dt = torch.exp(torch.empty(H).uniform_(math.log(1e-3), math.log(1e-1), generator=gen))
        self.dt_bias.data = dt + torch.log(-torch.expm1(-dt))

    def forward(self, x, state, mode):
        (q, k, v, gate), (b, a) = self.split(x, 4)
        q, k = (F.normalize(F.silu(t), dim=-1) for t in (q, k))
        g = -self.A_log.exp() * F.softplus(a + self.dt_bias)
        o, state = ops.gated_delta_rule(q, k, F.silu(v), g, torch.sigmoid(b), state=state, mode=mode,
                                        chunk_size=self.cfg.chunk_size)
        return self.finish(o, gate), state


class AarenMixer(Mixer):
    """Attention as an RNN: a learned query per head attends over all keys so far."""

    op_name = "aaren"

    def __init__(self, cfg, layer):
        super().__init__(cfg, layer, n_proj=2)
        self.query = nn.Parameter(torch.zeros(cfg.heads, cfg.head_dim))

    def init_(self, gen):
        self.query.data = torch.randn(self.query.shape, generator=gen)

    def forward(self, x, state, mode):
        (k, v), _ = self.split(x, 2)
        o, state = ops.aaren(self.query, k, v, state=state, mode=mode, chunk_size=self.cfg.chunk_size)
        return self.finish(o), state


class SlidingWindowAttentionMixer(Mixer):
    """Softmax attention over the last `window` tokens (no positional encoding: causality orders it)."""

    op_name = "sliding_window_attention"

    def __init__(self, cfg, layer):
        super().__init__(cfg, layer, n_proj=3)

    def forward(self, x, state, mode):
        (q, k, v), _ = self.split(x, 3)
        o, state = ops.sliding_window_attention(q, k, v, window=self.cfg.window, state=state, mode=mode,
                                                chunk_size=self.cfg.chunk_size)
        return self.finish(o), state


MIXERS = {m.op_name: m for m in (DecayLinearAttentionMixer, GatedDeltaRuleMixer, AarenMixer, SlidingWindowAttentionMixer)}

