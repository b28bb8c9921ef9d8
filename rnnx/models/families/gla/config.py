"""config.json of fla's `gla` (fla/models/gla/configuration_gla.py), with its defaults; what rnnx does not
import is refused by name. `use_gk`, `use_gv`, `attn_mode` and the fusion switches other than `fuse_norm` do
not change what fla's model computes (its layer always gates keys, never values) and are not read."""
from dataclasses import dataclass

from ..fla import GatedHeadsConfig


@dataclass(frozen=True)
class GLAConfig(GatedHeadsConfig):
    expand_k: float = 0.5
    expand_v: float = 1.0
    num_heads: int = 4
    use_short_conv: bool = False
    conv_size: int = 4
    clamp_min: float | None = None
