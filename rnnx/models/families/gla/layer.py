"""fla's `GatedLinearAttention` layer (fla/layers/gla.py) on rnnx ops, as its fused kernels compute it."""
import torch
import torch.nn.functional as F
from torch import nn

from .... import ops
from ...layers import FusedLinear, OutputNorm, ShortConvolution, declare_columns, repeat_heads

# fla's layer defaults, which GLABlock does not pass from the config: every GLA checkpoint has them
GATE_LOGIT_NORMALIZER, GATE_LOW_RANK_DIM = 16, 16


class GatedLinearAttention(nn.Module):
    """q, k, v projections (k, v over `num_kv_heads`, each serving `num_heads / num_kv_heads` query heads),
    optionally through short convolutions with SiLU; the key gate `gk = logsigmoid(W2 (W1 x) + b2) / 16`
    (clamped below at `clamp_min` if set) from the low-rank `gk_proj`; linear attention decaying each key
    dimension by `exp(gk)`, scale `Dk^-0.5` (fused_recurrent_gla's default); a per-head RMSNorm, gated by
    `swish(g_proj x)` with use_output_gate; the output projection.
    State: `{"conv": (B, H·Dk + HK·Dk + HK·Dv, W-1) (q, k, v), "recurrent": (B, H, Dk, Dv)}` (fla keeps
    `[Dv, Dk]`)."""

    def __init__(self, cfg, layer: int):
        super().__init__()
        H, HK, Dk, Dv = cfg.num_heads, cfg.kv_heads, cfg.head_k_dim, cfg.head_v_dim
        self.cfg, self.shape = cfg, (H, HK, Dk, Dv)
        self.qkv = {"q_proj": H * Dk, "k_proj": HK * Dk, "v_proj": HK * Dv}
        gates = ({"g_proj": H * Dv} if cfg.use_output_gate else {}) | {"gk_proj.0": GATE_LOW_RANK_DIM}
        # every projection of x is one product: q, k, v, the output gate and gk_proj's first (low-rank) factor
        self.proj = FusedLinear(cfg.hidden_size, self.qkv | gates, recurrence=("gk_proj.0",))  # the key gate's
        self.sizes = [sum(self.qkv.values()), *gates.values()]  # q, k, v together: the short conv's input
        self.gk_proj = nn.ModuleDict({"1": declare_columns(nn.Linear(GATE_LOW_RANK_DIM, HK * Dk, bias=True),
                                                           {"gk_proj.1": HK * Dk}, recurrence={"gk_proj.1"})})
        if cfg.use_short_conv:
            self.conv1d = ShortConvolution(sum(self.qkv.values()), cfg.conv_size, bias=False, activation="silu",
                                           parts={"q_conv1d": H * Dk, "k_conv1d": HK * Dk, "v_conv1d": HK * Dv})
        self.norm_name = OutputNorm.name_in(cfg)
        self.add_module(self.norm_name, OutputNorm(cfg, Dv))
        self.o_proj = nn.Linear(H * Dv, cfg.hidden_size, bias=False)

    def initial_state(self, batch_size: int) -> dict:
        H, HK, Dk, Dv = self.shape
        state = {"recurrent": torch.zeros(batch_size, H, Dk, Dv)}
        return ({"conv": self.conv1d.initial_state(batch_size)} | state) if self.cfg.use_short_conv else state

    def forward(self, x, state, mode):
        H, HK, Dk, Dv = self.shape
        qkv, *g, low_rank = self.proj(x).split(self.sizes, -1)
        conv = None
        if self.cfg.use_short_conv:
            qkv, conv = self.conv1d(qkv, state["conv"], mode)
        q, k, v = qkv.split(list(self.qkv.values()), -1)
        gk = F.logsigmoid(self.gk_proj["1"](low_rank)) / GATE_LOGIT_NORMALIZER
        if self.cfg.clamp_min is not None:
            gk = gk.clamp_min(self.cfg.clamp_min)
        k, gk = (repeat_heads(t.unflatten(-1, (HK, Dk)), H // HK) for t in (k, gk))
        o, recurrent = ops.decay_linear_attention(q.unflatten(-1, (H, Dk)), k,
                                                  repeat_heads(v.unflatten(-1, (HK, Dv)), H // HK), gk,
                                                  scale=Dk ** -0.5, state=state["recurrent"], mode=mode)
        o = getattr(self, self.norm_name)(o, *g)
        new_state = {"recurrent": recurrent}
        return self.o_proj(o.flatten(-2)), ({"conv": conv} | new_state) if conv is not None else new_state
