"""fla's HGRN2 (`model_type: hgrn2`)."""
from ..fla import register_fla_family
from .config import HGRN2Config
from .layer import HGRN2Attention, HGRN2Model

FAMILY = register_fla_family("hgrn2", HGRN2Config, HGRN2Attention, backbone=HGRN2Model)
