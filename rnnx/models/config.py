"""Configurations of the reference models (DESIGN.md, "Models we measure on")."""
from dataclasses import dataclass

from ..errors import RnnxError


@dataclass(frozen=True)
class ModelConfig:
    name: str
    layers: int
    d_model: int
    heads: int
    head_dim: int
    mixer: str                  # the name of the rnnx op that mixes tokens
    mlp_ratio: int = 4
    vocab_size: int = 256       # bytes
    window: int = 64            # sliding_window_attention only
    chunk_size: int = 64
    norm_eps: float = 1e-6


CONFIGS = {c.name: c for c in (
    ModelConfig("ref-tiny", layers=2, d_model=128, heads=4, head_dim=32, mixer="decay_linear_attention"),
    ModelConfig("ref-small", layers=6, d_model=512, heads=8, head_dim=64, mixer="decay_linear_attention"),
    ModelConfig("ref-small-gdn", layers=6, d_model=512, heads=8, head_dim=64, mixer="gated_delta_rule"),
    ModelConfig("ref-aaren", layers=4, d_model=256, heads=4, head_dim=64, mixer="aaren"),
    # The softmax baseline: same shape as ref-tiny, a constant-size window cache instead of a linear state.
    ModelConfig("ref-tiny-swa", layers=2, d_model=128, heads=4, head_dim=32, mixer="sliding_window_attention"),
    # The plots' softmax baseline: ref-small's shape, W >= the plotted stream: full attention, a filling KV cache.
    ModelConfig("ref-small-softmax", layers=6, d_model=512, heads=8, head_dim=64, mixer="sliding_window_attention", window=8192),
    # Fits a Cortex-M4 with 256 KB RAM and 1 MB flash: 0.56 MB of fp32 weights, 16 KB of state.
    ModelConfig("ref-micro", layers=2, d_model=64, heads=2, head_dim=32, mixer="decay_linear_attention"),
)}


def get_config(name: str) -> ModelConfig:
    if name not in CONFIGS:
        raise RnnxError(f"unknown model config {name!r}; built-in configs: {', '.join(CONFIGS)}")
    return CONFIGS[name]
