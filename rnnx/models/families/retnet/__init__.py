"""fla's RetNet (`model_type: retnet`)."""
import torch

from ..fla import register_fla_family
from .config import RetNetConfig
from .layer import MultiScaleRetention


def source_state(cache, cfg: RetNetConfig) -> list:
    """fla's cache per layer: `recurrent_state` `(B, H, Dk, Dv)` (fla's retention kernels keep `[Dk, Dv]`, as
    ours) and the count of tokens the layer has seen (`get_seq_length`), its rotary embedding's offset."""
    state = []
    for i in range(cfg.num_hidden_layers):
        recurrent = cache[i]["recurrent_state"]
        state.append({"recurrent": recurrent, "position": torch.full(recurrent.shape[:1], cache.get_seq_length(i))})
    return state


FAMILY = register_fla_family("retnet", RetNetConfig, MultiScaleRetention, source_state=source_state)
