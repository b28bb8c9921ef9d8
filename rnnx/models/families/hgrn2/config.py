"""config.json of fla's `hgrn2` (fla/models/hgrn2/configuration_hgrn2.py), with its defaults; what rnnx does
not import is refused by name. `attn_mode` and the fusion switches do not change what fla computes."""
from dataclasses import dataclass

from ....errors import RnnxError
from ...checkpoint import refuse
from ..fla import FlaConfig


@dataclass(frozen=True)
class HGRN2Config(FlaConfig):
    num_heads: int | None = None
    expand_ratio: int | None = 128
    use_short_conv: bool = False
    conv_size: int = 4
    use_lower_bound: bool = True
    elementwise_affine: bool | None = True

    def __post_init__(self):
        super().__post_init__()
        refuse(self, elementwise_affine=True)
        if self.expand_ratio is None and self.num_heads is None:
            raise RnnxError("config.json: one of the fields 'expand_ratio' and 'num_heads' must be set")
        if not 0 < self.head_f_dim <= self.hidden_size or self.hidden_size % self.head_f_dim:
            raise RnnxError(f"config.json: hidden_size {self.hidden_size} must be a multiple of the head's forget "
                            f"dimension expand_ratio {self.head_f_dim} (the lower bounds are one per channel)")

    @property
    def head_f_dim(self) -> int:
        """The key (forget gate) dimension of a head; HGRN2Config derives it from num_heads when unset."""
        return self.expand_ratio if self.expand_ratio is not None else self.hidden_size // self.num_heads

    @property
    def heads(self) -> int:
        """fla's layer recomputes its heads from expand_ratio, whatever num_heads says."""
        return self.hidden_size // self.head_f_dim
