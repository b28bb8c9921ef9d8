"""Per-head decay schedules, as log-space decays `(H,)` for `decay_linear_attention`."""
import torch


def transnormer_decay(num_heads: int, layer: int, num_layers: int) -> torch.Tensor:
    """TransNormerLLM (Qin et al., 2023), as in the paper: `λ_h = exp(-(8h/H) · (1 - l/L))` for heads
    `h = 1..H` of layer `l = 0..L-1`, so `log λ_h = -(8h/H)(1 - l/L)`: later heads forget faster and decay
    weakens with depth, with no head exactly decay-free (whose state would grow without bound over a
    stream). flash-linear-attention's `lightning_attn` layer differs: it uses ALiBi slopes `2^(-8h/H)`
    scaled by `1 - l/(L-1) + 1e-5` (MiniMax-01)."""
    h = torch.arange(1, num_heads + 1, dtype=torch.float64)
    return (-(8 * h / num_heads) * (1 - layer / num_layers)).float()


def retnet_decay(num_heads: int) -> torch.Tensor:
    """RetNet (Sun et al., 2023): `γ_h = 1 - 2^(-5-h)`, the same for every layer."""
    h = torch.arange(num_heads, dtype=torch.float64)
    return torch.log1p(-(2.0 ** (-5 - h))).float()
