"""config.json of transformers' `mamba2` (transformers/models/mamba2/configuration_mamba2.py), with its defaults;
what rnnx does not import is refused by name. fla registers its own Mamba2 over this model type; its keys that
transformers ignores but that change fla's math (D per channel, no gated norm, norm before gate) are refused."""
import math
from dataclasses import dataclass

from ....errors import RnnxError
from ...checkpoint import refuse


@dataclass(frozen=True)
class Mamba2Config:
    num_heads: int = 128
    head_dim: int = 64
    vocab_size: int = 32768
    hidden_size: int = 4096
    state_size: int = 128
    num_hidden_layers: int = 64
    layer_norm_epsilon: float = 1e-5
    expand: int = 2
    conv_kernel: int = 4
    n_groups: int = 8
    use_bias: bool = False
    use_conv_bias: bool = True
    hidden_act: str = "silu"
    # fp32 residuals: what rnnx computes anyway (the norms cast to fp32 and back, a no-op in fp32)
    residual_in_fp32: bool = True
    time_step_limit: list | tuple = (0.0, math.inf)
    tie_word_embeddings: bool = False
    D_has_hdim: bool = False
    rmsnorm: bool = True
    norm_before_gate: bool = False

    def __post_init__(self):
        # transformers clamps dt to the limit in its chunked scan but not in its single-token step: a limit
        # other than (0, inf) makes its own prefill and steps disagree
        object.__setattr__(self, "time_step_limit", tuple(self.time_step_limit))  # JSON gives a list
        refuse(self, time_step_limit=(0.0, math.inf), D_has_hdim=False, rmsnorm=True, norm_before_gate=False)
        if self.hidden_act not in ("silu", "swish"):
            raise RnnxError(f"config.json: field 'hidden_act' must be silu or swish, got {self.hidden_act!r}")
        if self.intermediate_size != self.num_heads * self.head_dim or self.num_heads % self.n_groups:
            raise RnnxError(f"config.json: hidden_size x expand ({self.hidden_size} x {self.expand}) must equal "
                            f"num_heads x head_dim ({self.num_heads} x {self.head_dim}), and num_heads a multiple "
                            f"of n_groups ({self.n_groups})")

    @property
    def intermediate_size(self) -> int:
        return int(self.expand * self.hidden_size)
