"""rnnx's own reference models as checkpoints (`model_type: rnnx`): config.json holds a `ModelConfig`'s
fields, the safetensors its parameters under their own names. What the examples train and save."""
from ...config import ModelConfig
from ...family import Family, register_family
from ...reference import ReferenceModel

FAMILY = register_family(Family("rnnx", ModelConfig, ReferenceModel, framework=None, source_state=None))
