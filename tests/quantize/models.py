"""Models the quantize tests export through `path/to/file.py:factory`."""
from rnnx.models import build_model
from rnnx.models.config import ModelConfig


def tiny_gdn():
    """The reference Gated DeltaNet mixer at ref-micro's size: its β and decay scalars ride in `proj`'s tail."""
    return build_model(ModelConfig("tiny-gdn", layers=2, d_model=64, heads=2, head_dim=32, mixer="gated_delta_rule"))
