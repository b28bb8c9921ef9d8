"""A GLA-style user model, for `rnnx export tests/models/gla.py:gla_lm`: its mixer calls
`rnnx.ops.decay_linear_attention` with a log decay per key dimension `(B, T, H, Dk)` computed from the input,
GLA's gate `g = logsigmoid(x W_g) / 16` (Yang et al., 2024, as flash-linear-attention's GatedLinearAttention).

The factory contract of `rnnx.export.source`: `initial_state(batch_size)` and `forward(tokens, state, mode)`
returning `(logits, state after the last token)`. Seeded weights, byte-level vocabulary, d_model 64.
"""
import torch
import torch.nn.functional as F
from torch import nn

from rnnx import ops

VOCAB, D_MODEL, HEADS, HEAD_DIM = 256, 64, 2, 32
GATE_NORMALIZER = 16  # fla's gate_logit_normalizer: keeps exp(g) near 1, a long memory


class GatedLinearAttention(nn.Module):
    """q, k, v and the per-key gate projected from x; `o = decay_linear_attention(q, k, v, g)`, gated by
    SiLU(x W_o') and projected back. State: `(B, H, Dk, Dv)`."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(D_MODEL, 4 * HEADS * HEAD_DIM, bias=False)  # q, k, v, gate logits
        self.gate = nn.Linear(D_MODEL, HEADS * HEAD_DIM, bias=False)
        self.out = nn.Linear(HEADS * HEAD_DIM, D_MODEL, bias=False)

    def forward(self, x, state, mode):
        q, k, v, logits = self.proj(x).unflatten(-1, (4, HEADS, HEAD_DIM)).unbind(2)   # (B, T, H, D) each
        g = F.logsigmoid(logits) / GATE_NORMALIZER                                   # (B, T, H, Dk), <= 0
        o, state = ops.decay_linear_attention(q, k, v, g, state=state, mode=mode)
        return self.out(o.flatten(-2) * F.silu(self.gate(x))), state


class GlaLM(nn.Module):
    """Embedding -> RMSNorm -> GLA (residual) -> RMSNorm -> 4x MLP (residual) -> RMSNorm -> head."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.mix_norm = nn.RMSNorm(D_MODEL, eps=1e-6)
        self.mixer = GatedLinearAttention()
        self.mlp_norm = nn.RMSNorm(D_MODEL, eps=1e-6)
        self.mlp_in = nn.Linear(D_MODEL, 4 * D_MODEL, bias=False)
        self.mlp_out = nn.Linear(4 * D_MODEL, D_MODEL, bias=False)
        self.norm = nn.RMSNorm(D_MODEL, eps=1e-6)
        self.head = nn.Linear(D_MODEL, VOCAB, bias=False)

    def initial_state(self, batch_size: int = 1) -> dict:
        return {"attention": torch.zeros(batch_size, HEADS, HEAD_DIM, HEAD_DIM)}

    def forward(self, tokens: torch.Tensor, state: dict | None = None, mode: str = "chunk"):
        state = self.initial_state(tokens.shape[0]) if state is None else state
        x = self.embed(tokens)
        y, attention = self.mixer(self.mix_norm(x), state["attention"], mode)
        x = x + y
        x = x + self.mlp_out(F.silu(self.mlp_in(self.mlp_norm(x))))
        return self.head(self.norm(x)), {"attention": attention}


@torch.no_grad()
def gla_lm() -> nn.Module:
    model, gen = GlaLM(), torch.Generator().manual_seed(0)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.fill_(1)
        else:
            p.normal_(0, 1 if name == "embed.weight" else p.shape[-1] ** -0.5, generator=gen)
    return model.eval()


def source() -> str:
    """What `rnnx export` takes for this model."""
    return f"{__file__}:gla_lm"
