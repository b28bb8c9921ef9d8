"""fla's `GatedDeltaNet` layer (fla/layers/gated_deltanet.py) on rnnx ops, as its fused kernels compute it."""
import torch
import torch.nn.functional as F
from torch import nn

from .... import ops
from ...layers import DeltaRuleLayer, FusedLinear, l2norm, repeat_heads


class GatedDeltaNet(DeltaRuleLayer):
    """q, k, v projections through short convolutions with SiLU (`DeltaRuleLayer`); q and k L2-normalised
    (eps 1e-6 inside fla's kernel); `g = -exp(A_log) · softplus(a_proj x + dt_bias)`, `β = σ(b_proj x)` (x2 with
    allow_neg_eigval); the gated delta rule over `num_v_heads` value heads, each reading q/k head
    `h // (HV / H)`; per-head RMSNorm gated by `g_proj x`; the output projection.
    State: `{"conv": (B, 2·H·Dk + HV·Dv, W-1), "recurrent": (B, HV, Dk, Dv)}` (fla keeps `[Dv, Dk]`)."""

    def __init__(self, cfg, layer: int):
        H, HV, Dv = cfg.num_heads, cfg.v_heads, cfg.head_v_dim
        super().__init__(cfg, (H, HV, cfg.head_dim, Dv), gate_activation=cfg.output_gate_activation)
        self.ab_proj = FusedLinear(cfg.hidden_size, {"a_proj": HV, "b_proj": HV} | (
            {"g_proj": HV * Dv} if cfg.use_gate else {}), recurrence=("a_proj", "b_proj"))  # dt and β
        self.A_log = nn.Parameter(torch.zeros(HV))
        self.dt_bias = nn.Parameter(torch.zeros(HV))

    def forward(self, x, state, mode):
        H, HV, Dk, Dv = self.shape
        q, k, v, conv = self.qkv(x, state, mode)
        q, k = (repeat_heads(l2norm(t), HV // H) for t in (q, k))
        a, b, *g = self.ab_proj.split(self.ab_proj(x))
        beta = torch.sigmoid(b) * (2 if self.cfg.allow_neg_eigval else 1)
        decay = -self.A_log.exp() * F.softplus(a + self.dt_bias)
        o, recurrent = ops.gated_delta_rule(q, k, v, decay, beta, scale=Dk ** -0.5, state=state["recurrent"],
                                            mode=mode)
        return self.output(o, g[0] if g else None, conv, recurrent)
