"""fla's `MultiScaleRetention` layer (fla/layers/multiscale_retention.py) on rnnx ops, as its fused_recurrent
kernel computes it."""
import torch
from torch import nn

from .... import ops
from ...layers import FusedLinear, OutputNorm, repeat_heads

ROTARY_BASE = 10000.0  # fla's RotaryEmbedding default; the layer builds it with no other


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """fla's rotary embedding, not interleaved (the halves of each head rotate together, GPT-NeoX's spelling):
    x `(B, T, H, D)` = `(x1, x2)` -> `(x1 cos - x2 sin, x1 sin + x2 cos)`, cos and sin `(B, T, 1, D/2)`."""
    x1, x2 = x.chunk(2, -1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


class MultiScaleRetention(nn.Module):
    """q, k, v (and the gate g) projections as one product, k and v over `num_kv_heads` each serving
    `num_heads / num_kv_heads` query heads; the rotary embedding on q and k at their absolute positions (its
    angles `position · 10000^(-2i/Dk)` in fp32, as fla's tables); retention: linear attention decaying head h by
    `γ_h = 1 - 2^(-5-h)`, scale Dk^-0.5 (fused_recurrent_retention's defaults); a per-head RMSNorm gated by
    `swish(g_proj x)` with use_output_gate; the output projection.
    State: `{"recurrent": (B, H, Dk, Dv), "position": (B,) int64}`: fla's retention state (kept `[Dk, Dv]` as
    ours) and the count of tokens seen, which fla's cache keeps as its rotary offset."""

    def __init__(self, cfg, layer: int):
        super().__init__()
        H, HK, Dk, Dv = cfg.num_heads, cfg.kv_heads, cfg.head_k_dim, cfg.head_v_dim
        self.cfg, self.shape = cfg, (H, HK, Dk, Dv)
        self.proj = FusedLinear(cfg.hidden_size, {"q_proj": H * Dk, "k_proj": HK * Dk, "v_proj": HK * Dv} | (
            {"g_proj": H * Dv} if cfg.use_output_gate else {}))
        self.norm_name = OutputNorm.name_in(cfg)
        self.add_module(self.norm_name, OutputNorm(cfg, Dv))
        self.o_proj = nn.Linear(H * Dv, cfg.hidden_size, bias=False)
        self.register_buffer("decay", ops.retnet_decay(H), persistent=False)
        self.register_buffer("inv_freq", 1.0 / ROTARY_BASE ** (torch.arange(0, Dk, 2, dtype=torch.float32) / Dk),
                             persistent=False)

    def initial_state(self, batch_size: int) -> dict:
        H, HK, Dk, Dv = self.shape
        return {"recurrent": torch.zeros(batch_size, H, Dk, Dv),
                "position": torch.zeros(batch_size, dtype=torch.int64)}

    def forward(self, x, state, mode):
        H, HK, Dk, Dv = self.shape
        q, k, v, *g = self.proj.split(self.proj(x))
        position = state["position"]
        t = position[:, None] + torch.arange(x.shape[1], device=x.device)  # (B, T) absolute positions
        angle = (t[..., None].float() * self.inv_freq)[:, :, None]
        cos, sin = angle.cos(), angle.sin()
        q = rotary(q.unflatten(-1, (H, Dk)), cos, sin)
        k = repeat_heads(rotary(k.unflatten(-1, (HK, Dk)), cos, sin), H // HK)
        o, recurrent = ops.decay_linear_attention(q, k, repeat_heads(v.unflatten(-1, (HK, Dv)), H // HK), self.decay,
                                                  scale=Dk ** -0.5, state=state["recurrent"], mode=mode)
        o = getattr(self, self.norm_name)(o, *g)
        return self.o_proj(o.flatten(-2)), {"recurrent": recurrent, "position": position + x.shape[1]}
