"""Reference model families built on rnnx's ops."""
from .config import CONFIGS, ModelConfig, get_config
from .generate import EagerModel, Generation, Steps
from .reference import ReferenceModel, build_model

__all__ = ["CONFIGS", "ModelConfig", "get_config", "ReferenceModel", "build_model", "Generation", "EagerModel", "Steps"]
