"""fla's `DeltaNet` layer (fla/layers/delta_net.py) on rnnx ops, as its fused_recurrent kernel computes it."""
import torch

from .... import ops
from ...layers import DeltaRuleLayer, FusedLinear, l2norm


def elu_p1(x: torch.Tensor) -> torch.Tensor:
    """fla's `elu_p1` as it runs on CPU: `elu(x) + 1` without the cancellation of `exp(x) - 1 + 1`."""
    return torch.where(x >= 0, x + 1, x.clamp_max(0).exp())


def sum_norm(x: torch.Tensor) -> torch.Tensor:
    """fla's `sum_norm`: `F.normalize(x, p=1, eps=1e-6)`, i.e. `x / max(Σ|x|, 1e-6)`."""
    return x / x.abs().sum(-1, keepdim=True).clamp_min(1e-6)


# q and k after the short convolution; SiLU is the convolution's own activation (DeltaRuleLayer)
QK_ACTIVATION = {"silu": lambda x: x, "relu": torch.relu, "elu": elu_p1, "identity": lambda x: x}


class DeltaNet(DeltaRuleLayer):
    """q, k, v projections through short convolutions (SiLU on v; on q, k with qk_activation silu, else relu,
    elu + 1 or none after the convolution: `DeltaRuleLayer`); q and k L2-normalised in fla's kernel (eps 1e-6)
    or sum-normalised before it (qk_norm sum); `β = σ(b_proj x)` (1 without use_beta; x2 with
    allow_neg_eigval); the delta rule (the gated rule with log-decay 0), scale Dk^-0.5; a per-head RMSNorm,
    gated by `swish(g_proj x)` with use_gate; the output projection.
    State: `{"conv": (B, 2·H·Dk + H·Dv, W-1), "recurrent": (B, H, Dk, Dv)}` (fla's fused_recurrent layout)."""

    def __init__(self, cfg, layer: int):
        H, Dv = cfg.num_heads, cfg.head_v_dim
        super().__init__(cfg, (H, H, cfg.head_k_dim, Dv), qk_silu=cfg.qk_activation == "silu")
        gates = ({"b_proj": H} if cfg.use_beta else {}) | ({"g_proj": H * Dv} if cfg.use_gate else {})
        if gates:  # b_proj and g_proj as one product
            self.bg_proj = FusedLinear(cfg.hidden_size, gates, recurrence={"b_proj"} & set(gates))  # β
        self.register_buffer("decay", torch.zeros(H), persistent=False)  # exp(0) = 1: no decay

    def forward(self, x, state, mode):
        cfg, (H, _, Dk, _) = self.cfg, self.shape
        q, k, v, conv = self.qkv(x, state, mode)
        norm = l2norm if cfg.qk_norm == "l2" else sum_norm
        q, k = (norm(QK_ACTIVATION[cfg.qk_activation](t)) for t in (q, k))
        gates = {}
        if cfg.use_beta or cfg.use_gate:
            gates = dict(zip(dict(self.bg_proj.parts), self.bg_proj.split(self.bg_proj(x))))
        beta = torch.sigmoid(gates["b_proj"]) if cfg.use_beta else x.new_ones(*x.shape[:2], H)
        beta = beta * 2 if cfg.allow_neg_eigval else beta
        o, recurrent = ops.gated_delta_rule(q, k, v, self.decay, beta, scale=Dk ** -0.5, state=state["recurrent"],
                                            mode=mode)
        return self.output(o, gates.get("g_proj"), conv, recurrent)
