"""fla's `HGRN2Attention` layer (fla/layers/hgrn2.py) and `HGRN2Model`'s lower bounds on rnnx ops, as its
fused kernels compute them."""
import torch
import torch.nn.functional as F
from torch import nn

from .... import ops
from ...layers import FlaBackbone, FusedLinear, ShortConvolution

# rms_norm_linear's default: HGRN2 passes no eps to its fused output norm, whatever norm_eps says
OUTPUT_NORM_EPS = 1e-5


class HGRN2Attention(nn.Module):
    """q, forget-gate f and input i projections (optionally through short convolutions without activation);
    forget gate `log F = logsigmoid(f)`, raised to `lb + (1 - lb)·F` by the layer's lower bound (`lb`, layers
    after the first); key `1 - F`; linear attention over the input as value with query `swish(q)`, decaying
    each key dimension by F, scale `Dk^-0.5` (fused_recurrent_gla's default, Dk = expand_ratio); RMSNorm over
    all heads (eps 1e-5) and the output projection.
    State: `{"conv": (B, 3·hidden, W-1) (q, f, i), "recurrent": (B, H, Dk, Dv)}` (fla keeps `[Dv, Dk]`)."""

    def __init__(self, cfg, layer: int):
        super().__init__()
        H, Dk, D = cfg.heads, cfg.head_f_dim, cfg.hidden_size
        self.cfg, self.layer, self.shape = cfg, layer, (H, Dk, D // H)
        qfi = {"q_proj": H * Dk, "f_proj": H * Dk, "i_proj": D}
        self.proj = FusedLinear(D, qfi, recurrence=("f_proj",))  # the forget gate
        if cfg.use_short_conv:
            self.conv1d = ShortConvolution(sum(qfi.values()), cfg.conv_size, bias=False, activation=None,
                                           parts={"q_conv1d": H * Dk, "f_conv1d": H * Dk, "i_conv1d": D})
        self.g_norm = nn.RMSNorm(D, eps=OUTPUT_NORM_EPS)
        self.o_proj = nn.Linear(D, D, bias=False)

    def initial_state(self, batch_size: int) -> dict:
        H, Dk, Dv = self.shape
        state = {"recurrent": torch.zeros(batch_size, H, Dk, Dv)}
        return ({"conv": self.conv1d.initial_state(batch_size)} | state) if self.cfg.use_short_conv else state

    def forward(self, x, state, mode, lower_bound=None):
        """x `(B, T, hidden)`; lower_bound `(hidden,)` (None without use_lower_bound)."""
        H, Dk, Dv = self.shape
        qfi, conv = self.proj(x), None
        if self.cfg.use_short_conv:
            qfi, conv = self.conv1d(qfi, state["conv"], mode)
        q, f, i = qfi.split([H * Dk, H * Dk, H * Dv], -1)
        g = F.logsigmoid(f)
        if lower_bound is not None and self.layer > 0:  # the first layer's bound is zero: fla skips it
            g = torch.logaddexp(lower_bound.log(), torch.log1p(-lower_bound) + g)
        k = 1 - g.exp()
        q, k, g = (t.unflatten(-1, (H, Dk)) for t in (F.silu(q), k, g))
        o, recurrent = ops.decay_linear_attention(q, k, i.unflatten(-1, (H, Dv)), g, scale=Dk ** -0.5,
                                                  state=state["recurrent"], mode=mode)
        new_state = {"recurrent": recurrent}
        return self.o_proj(self.g_norm(o.flatten(-2))), ({"conv": conv} | new_state) if conv is not None \
            else new_state


class HGRN2Model(FlaBackbone):
    """fla's `HGRN2Model`: the shared backbone and, with use_lower_bound, `lower_bounds` `(layers, hidden)`,
    whose softmax over layers, summed up to each layer (less the first's), bounds that layer's forget gate
    from below: 0 for the first, rising with depth."""

    def __init__(self, cfg, attention):
        super().__init__(cfg, attention)
        self.use_lower_bound = cfg.use_lower_bound
        if cfg.use_lower_bound:
            self.lower_bounds = nn.Parameter(torch.zeros(cfg.num_hidden_layers, cfg.hidden_size))

    def layer_inputs(self) -> list[dict]:
        if not self.use_lower_bound:
            return [{} for _ in self.layers]
        bounds = self.lower_bounds.softmax(0)
        bounds = bounds.cumsum(0) - bounds[0]
        return [{"lower_bound": bounds[i]} for i in range(len(self.layers))]
