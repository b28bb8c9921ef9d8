"""config.json of fla's `retnet` (fla/models/retnet/configuration_retnet.py), with its defaults; what rnnx does
not import is refused by name. `use_short_conv` and `conv_size` are not read: RetNetBlock does not pass them,
so fla's retention layer never has short convolutions; nor `max_position_embeddings` (fla's rotary tables
grow with the position), `attn_mode` or the fusion switches other than `fuse_norm` (which names the norm)."""
from dataclasses import dataclass

from ....errors import RnnxError
from ..fla import GatedHeadsConfig


@dataclass(frozen=True)
class RetNetConfig(GatedHeadsConfig):
    expand_k: float = 1.0
    expand_v: float = 2.0
    hidden_ratio: int | None = 2
    num_heads: int = 8

    def __post_init__(self):
        super().__post_init__()
        if self.head_k_dim % 2 or self.head_k_dim > 256:
            raise RnnxError(f"config.json: the key head size hidden_size x expand_k / num_heads ({self.head_k_dim}) "
                            "must be even and at most 256 (fla's rotary embedding)")
