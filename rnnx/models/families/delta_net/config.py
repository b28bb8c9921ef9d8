"""config.json of fla's `delta_net` (fla/models/delta_net/configuration_delta_net.py), with its defaults; what
rnnx does not import is refused by name. `use_output_norm` is not read: DeltaNetBlock passes it, but fla's
layer swallows it and always applies its output norm. Its short convolutions never have a bias (`conv_bias`
is a layer argument the block does not pass)."""
from dataclasses import dataclass

from ....errors import RnnxError
from ..fla import ExpandedHeads, FlaConfig

QK_ACTIVATIONS, QK_NORMS = ("silu", "relu", "elu", "identity"), ("l2", "sum")


@dataclass(frozen=True)
class DeltaNetConfig(ExpandedHeads, FlaConfig):
    expand_k: float = 1.0
    expand_v: float = 1.0
    use_gate: bool = False
    use_short_conv: bool = True
    allow_neg_eigval: bool = False
    conv_size: int = 4
    use_beta: bool = True
    num_heads: int = 16
    qk_norm: str = "l2"
    qk_activation: str = "silu"

    def __post_init__(self):
        super().__post_init__()
        for field, allowed in (("qk_activation", QK_ACTIVATIONS), ("qk_norm", QK_NORMS)):
            if getattr(self, field) not in allowed:
                raise RnnxError(f"config.json: field {field!r} must be one of {', '.join(allowed)} (as fla's DeltaNet), "
                                f"got {getattr(self, field)!r}")
        self.check_heads()
