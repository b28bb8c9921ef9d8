"""What `rnnx export MODEL` accepts: a built-in config name or `path/to/file.py:factory`."""
import importlib.util
from pathlib import Path

from torch import nn

from ..errors import RnnxError
from ..models import CONFIGS, build_model


def load_model(source: str, seed: int = 0) -> nn.Module:
    """Build the model named by `source`: a config of `rnnx.models` (seeded), or a zero-argument factory
    in a Python file returning a model with `initial_state(batch_size)` and `forward(tokens, state, mode)`."""
    if source in CONFIGS:
        return build_model(source, seed=seed)
    path, _, factory = source.rpartition(":")
    if not path.endswith(".py"):
        raise RnnxError(f"unknown model {source!r}: give a built-in config ({', '.join(CONFIGS)}) "
                        "or path/to/file.py:factory")
    file = Path(path)
    if not file.is_file():
        raise RnnxError(f"model file {file} does not exist")
    spec = importlib.util.spec_from_file_location(f"rnnx_user_model_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise RnnxError(f"model file {file} failed to import: {type(e).__name__}: {e}") from e
    if not callable(getattr(module, factory, None)):
        raise RnnxError(f"model file {file} has no function {factory!r}")
    model = getattr(module, factory)()
    if not isinstance(model, nn.Module) or not callable(getattr(model, "initial_state", None)):
        raise RnnxError(f"{source} must return a torch.nn.Module with initial_state(batch_size) and "
                        f"forward(tokens, state, mode); got {type(model).__name__}")
    return model.eval()
