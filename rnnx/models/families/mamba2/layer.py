"""transformers' `Mamba2Mixer` and `Mamba2Block` (transformers/models/mamba2/modeling_mamba2.py, its torch path)
on rnnx ops."""
import torch
import torch.nn.functional as F
from torch import nn

from .... import ops
from ...layers import ShortConvolution, declare_columns, repeat_heads


class GroupGatedRMSNorm(nn.Module):
    """transformers' `MambaRMSNormGated` (mamba_ssm's `RMSNormGated` with norm_before_gate=False): gate first,
    then an RMSNorm over each of `groups` equal slices of the channels, `rmsnorm(x · silu(z)) · weight`."""

    def __init__(self, hidden_size: int, groups: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.groups, self.eps = groups, eps

    def forward(self, x, z):
        """x, z `(B, T, D)` -> `(B, T, D)`."""
        x = (x * F.silu(z)).unflatten(-1, (self.groups, -1))
        return F.rms_norm(x, x.shape[-1:], eps=self.eps).flatten(-2) * self.weight


class Mamba2Mixer(nn.Module):
    """`in_proj` -> z (I), xBC (I + 2·G·N), dt (H); xBC through the causal conv with bias and SiLU, split into
    x (H heads of P), B and C (G groups of N; head h reads group `h // (H/G)`); `dt = softplus(dt + dt_bias)`;
    the SSD recurrence `S_t = exp(dt·A) S_{t-1} + B_t (dt·x_t)ᵀ`, `y_t = C_tᵀ S_t + D·x_t` with
    `A = -exp(A_log)`: linear attention with a per-token decay, q = C, k = B, v = dt·x, scale 1; the gated
    group RMSNorm; `out_proj`. State: `{"conv": (B, I + 2·G·N, W-1), "recurrent": (B, H, N, P)}`
    (transformers keeps the last W conv inputs, and the SSM state as `(B, H, P, N)`)."""

    def __init__(self, cfg, layer: int):
        super().__init__()
        H, P, G, N, I = cfg.num_heads, cfg.head_dim, cfg.n_groups, cfg.state_size, cfg.intermediate_size
        self.shape = (H, P, G, N, I)
        self.in_proj = declare_columns(nn.Linear(cfg.hidden_size, 2 * I + 2 * G * N + H, bias=cfg.use_bias),
                                       {"z": I, "xBC": I + 2 * G * N, "dt": H}, recurrence={"dt"})
        self.conv1d = ShortConvolution(I + 2 * G * N, cfg.conv_kernel, bias=cfg.use_conv_bias, activation="silu")
        self.dt_bias = nn.Parameter(torch.zeros(H))
        self.A_log = nn.Parameter(torch.zeros(H))
        self.D = nn.Parameter(torch.ones(H))
        self.norm = GroupGatedRMSNorm(I, G, cfg.layer_norm_epsilon)
        self.out_proj = nn.Linear(I, cfg.hidden_size, bias=cfg.use_bias)

    def initial_state(self, batch_size: int) -> dict:
        H, P, G, N, I = self.shape
        return {"conv": self.conv1d.initial_state(batch_size), "recurrent": torch.zeros(batch_size, H, N, P)}

    def forward(self, x, state, mode):
        """x `(B, T, hidden)` -> `(B, T, hidden)` and the state after it."""
        H, P, G, N, I = self.shape
        z, xbc, dt = self.in_proj(x).split([I, I + 2 * G * N, H], -1)
        xbc, conv = self.conv1d(xbc, state["conv"], mode)
        xs, b, c = xbc.split([I, G * N, G * N], -1)
        xs = xs.unflatten(-1, (H, P))
        dt = F.softplus(dt + self.dt_bias)
        k, q = (repeat_heads(t.unflatten(-1, (G, N)), H // G) for t in (b, c))
        o, recurrent = ops.decay_linear_attention(q, k, xs * dt[..., None], dt * -self.A_log.exp(), scale=1.0,
                                                  state=state["recurrent"], mode=mode)
        y = o + xs * self.D[:, None]
        return self.out_proj(self.norm(y.flatten(-2), z)), {"conv": conv, "recurrent": recurrent}


class Mamba2Block(nn.Module):
    """`x + mixer(rmsnorm(x))`: no MLP."""

    def __init__(self, cfg, layer: int):
        super().__init__()
        self.norm = nn.RMSNorm(cfg.hidden_size, eps=cfg.layer_norm_epsilon)
        self.mixer = Mamba2Mixer(cfg, layer)

    def initial_state(self, batch_size: int) -> dict:
        return self.mixer.initial_state(batch_size)

    def forward(self, x, state, mode):
        y, state = self.mixer(self.norm(x), state, mode)
        return x + y, state


class Mamba2Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Mamba2Block(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm_f = nn.RMSNorm(cfg.hidden_size, eps=cfg.layer_norm_epsilon)
