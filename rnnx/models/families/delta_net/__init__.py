"""fla's DeltaNet (`model_type: delta_net`)."""
from functools import partial

from ..fla import fla_source_state, register_fla_family
from .config import DeltaNetConfig
from .layer import DeltaNet

# fla's DeltaNet kernels keep the state [Dk, Dv], like ours
FAMILY = register_fla_family("delta_net", DeltaNetConfig, DeltaNet, source_state=partial(fla_source_state, v_first=False))
