"""fla's Gated Linear Attention (`model_type: gla`)."""
from ..fla import register_fla_family
from .config import GLAConfig
from .layer import GatedLinearAttention

FAMILY = register_fla_family("gla", GLAConfig, GatedLinearAttention)
