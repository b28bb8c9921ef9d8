"""fla's Gated DeltaNet (`model_type: gated_deltanet`)."""
from ..fla import register_fla_family
from .config import GatedDeltaNetConfig
from .layer import GatedDeltaNet

FAMILY = register_fla_family("gated_deltanet", GatedDeltaNetConfig, GatedDeltaNet)
