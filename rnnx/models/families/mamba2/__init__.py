"""transformers' Mamba-2 (`model_type: mamba2`; fla registers its own over the same type, with the same tensor
names: parity is against transformers', whose torch path runs on CPU and continues a cache over several tokens)."""
from ...family import Family, register_family
from ...layers import CausalLM
from .config import Mamba2Config
from .layer import Mamba2Backbone


def source_state(cache, cfg: Mamba2Config) -> list:
    """transformers' `DynamicCache` of `LinearAttentionLayer`s: per layer `conv_states[0]` `(B, I + 2·G·N, W)`
    (the last W conv inputs: ours are the last W-1) and `recurrent_states[0]` `(B, H, P, N)`."""
    return [{"conv": layer.conv_states[0][..., 1:], "recurrent": layer.recurrent_states[0].transpose(-1, -2)}
            for layer in cache.layers]


FAMILY = register_family(Family(
    model_type="mamba2",
    config=Mamba2Config,
    model=lambda cfg: CausalLM(cfg, "backbone", Mamba2Backbone(cfg), "norm_f"),
    framework="transformers",
    source_state=source_state,
))
