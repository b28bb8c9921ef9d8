"""What the fla families share: the fields of fla's LM configs around the layer, the head sizes fla derives
from expansion ratios, the cache layout, and their registration with fla as the parity source."""
import math
from dataclasses import dataclass

import torch

from ...errors import RnnxError
from ..checkpoint import refuse
from ..family import Family, register_family
from ..layers import FlaBackbone, FlaForCausalLM


@dataclass(frozen=True)
class FlaConfig:
    """The fields every fla config has for its `FLAForCausalLM` (embeddings, blocks with a SwiGLU MLP, final
    norm, LM head), with fla's defaults; a family's config adds its layer's. Hybrid softmax layers (`attn`),
    attention residuals and other MLP activations are refused by name."""

    hidden_size: int = 2048
    num_hidden_layers: int = 24
    hidden_ratio: int | None = 4
    intermediate_size: int | None = None
    hidden_act: str = "swish"
    norm_eps: float = 1e-6
    vocab_size: int = 32000
    tie_word_embeddings: bool = False
    attn: dict | None = None
    attnres_block_size: int | None = None

    def __post_init__(self):
        refuse(self, attn=None, attnres_block_size=None, hidden_act="swish")


class ExpandedHeads:
    """Head sizes from `expand_k` / `expand_v` (DeltaNet, RetNet, GLA): `hidden_size · expand // num_heads`,
    with `num_kv_heads` key/value heads where the config has that field."""

    def check_heads(self):
        for expand in ("expand_k", "expand_v"):  # refuses the dims fla's layer asserts against
            expanded_head_dim(self, expand, self.num_heads)
        if self.num_heads % self.kv_heads:
            raise RnnxError(f"config.json: num_heads {self.num_heads} must be a multiple of num_kv_heads "
                            f"{self.kv_heads}")

    @property
    def kv_heads(self) -> int:
        return getattr(self, "num_kv_heads", None) or self.num_heads

    @property
    def head_k_dim(self) -> int:
        return expanded_head_dim(self, "expand_k", self.num_heads)

    @property
    def head_v_dim(self) -> int:
        return expanded_head_dim(self, "expand_v", self.num_heads)


@dataclass(frozen=True)
class GatedHeadsConfig(ExpandedHeads, FlaConfig):
    """The fields fla's RetNet and GLA share: grouped key/value heads, an output gate, the output norm's
    switches; a feature map and a norm without weight are refused."""

    num_heads: int = 4
    num_kv_heads: int | None = None
    feature_map: str | None = None
    use_output_gate: bool = True
    elementwise_affine: bool | None = True
    fuse_norm: bool = True  # names the output norm: `g_norm_swish_gate` fused, `g_norm` not

    def __post_init__(self):
        super().__post_init__()
        refuse(self, feature_map=None, elementwise_affine=True)
        self.check_heads()


def expanded_head_dim(cfg, expand: str, heads: int) -> int:
    """fla's head size from an expansion ratio: `round(hidden_size · expand) // heads`, where fla asserts the
    product whole and a multiple of `heads`."""
    dim = cfg.hidden_size * getattr(cfg, expand)
    if not math.isclose(dim, round(dim)) or round(dim) % heads:
        raise RnnxError(f"config.json: hidden_size x {expand} ({cfg.hidden_size} x {getattr(cfg, expand)}) must be "
                        f"a multiple of num_heads {heads}")
    return round(dim) // heads


def fla_source_state(cache, cfg, v_first: bool = True) -> list:
    """fla's cache after a forward as the state of an fla family's layers (`Family.source_state`): per layer
    `conv_state`, a tuple of `(B, D, W)` (the last W inputs of each short conv; ours are the last W-1, fused
    along D) when use_short_conv, and `recurrent_state` `(B, H, Dv, Dk)` from the layers that pass fla's kernels
    `state_v_first=True` (GLA, Gated DeltaNet), else `(B, H, Dk, Dv)` like ours (DeltaNet)."""
    state = []
    for i in range(cfg.num_hidden_layers):
        recurrent = cache[i]["recurrent_state"]
        layer = {"recurrent": recurrent.transpose(-1, -2) if v_first else recurrent}
        if cfg.use_short_conv:
            layer = {"conv": torch.cat([c[..., 1:] for c in cache[i]["conv_state"]], 1)} | layer
        state.append(layer)
    return state


def register_fla_family(model_type: str, config: type, attention, *, backbone=FlaBackbone,
                        source_state=fla_source_state) -> Family:
    """An fla family: fla's causal LM around `attention(cfg, layer)`, checked against fla running its
    fused recurrent kernels (its chunk kernels fail for T > 64 under Triton's interpreter; DeltaNet's refuse
    fp32: TOOLCHAIN-NOTES)."""
    return register_family(Family(
        model_type=model_type,
        config=config,
        model=lambda cfg: FlaForCausalLM(cfg, attention, backbone=backbone),
        framework="fla",
        source_state=source_state,
        source_options={"attn_mode": "fused_recurrent"},
    ))
