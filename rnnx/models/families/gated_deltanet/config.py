"""config.json of fla's `gated_deltanet` (fla/models/gated_deltanet/configuration_gated_deltanet.py), with its
defaults; what rnnx does not import is refused by name."""
from dataclasses import dataclass

from ....errors import RnnxError
from ..fla import FlaConfig


@dataclass(frozen=True)
class GatedDeltaNetConfig(FlaConfig):
    expand_v: float = 2.0
    use_gate: bool = True
    use_short_conv: bool = True
    allow_neg_eigval: bool = False
    conv_size: int = 4
    head_dim: int = 256
    num_heads: int = 6
    num_v_heads: int | None = None
    num_hidden_layers: int = 21
    output_gate_activation: str = "swish"

    def __post_init__(self):
        super().__post_init__()
        if self.output_gate_activation not in ("swish", "silu", "sigmoid"):
            raise RnnxError(f"config.json: field 'output_gate_activation' must be swish, silu or sigmoid, "
                            f"got {self.output_gate_activation!r}")
        if self.v_heads % self.num_heads or (self.head_dim * self.expand_v) % 1:
            raise RnnxError(f"config.json: num_v_heads {self.v_heads} must be a multiple of num_heads "
                            f"{self.num_heads}, and head_dim x expand_v ({self.head_dim} x {self.expand_v}) an integer")

    @property
    def v_heads(self) -> int:
        return self.num_v_heads or self.num_heads

    @property
    def head_v_dim(self) -> int:
        return int(self.head_dim * self.expand_v)
