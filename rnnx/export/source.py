"""What `rnnx export MODEL` accepts: a built-in config name, a checkpoint directory (`config.json` and
safetensors weights of a family `rnnx.models.families` imports) or `path/to/file.py:factory`."""
import importlib.util
import sysconfig
import traceback
from pathlib import Path

from torch import nn

from ..errors import RnnxError
from ..models import CONFIGS, build_model
from ..models.checkpoint import is_checkpoint
from ..models.family import import_checkpoint

# rnnx's own code and installed packages' (torch's modules): what fails there is not the user's file
_NOT_USER_CODE = {Path(__file__).resolve().parents[1],
                  *(Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib"))}


def load_model(source: str, seed: int = 0) -> nn.Module:
    """Build the model named by `source`: a config of `rnnx.models` (seeded), a checkpoint directory (its
    weights), or a zero-argument factory in a Python file returning a model with `initial_state(batch_size)`
    and `forward(tokens, state, mode)`."""
    if source in CONFIGS:
        return build_model(source, seed=seed)
    if is_checkpoint(source):
        return import_checkpoint(source)
    path, _, factory = source.rpartition(":")
    if not path.endswith(".py"):
        raise RnnxError(f"unknown model {source!r}: give a built-in config ({', '.join(CONFIGS)}), a checkpoint "
                        "directory (config.json and *.safetensors) or path/to/file.py:factory")
    file = Path(path)
    if not file.is_file():
        raise RnnxError(f"model file {file} does not exist")
    spec = importlib.util.spec_from_file_location(f"rnnx_user_model_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    _run_user_code(file, "importing the model file", lambda: spec.loader.exec_module(module))
    if not callable(getattr(module, factory, None)):
        raise RnnxError(f"model file {file} has no function {factory!r}")
    model = _run_user_code(file, f"{factory}()", getattr(module, factory))
    if not isinstance(model, nn.Module) or not callable(getattr(model, "initial_state", None)):
        raise RnnxError(f"{source} must return a torch.nn.Module with initial_state(batch_size) and "
                        f"forward(tokens, state, mode); got {type(model).__name__}")
    return model.eval()


def _run_user_code(file: Path, what: str, code):
    """Run the user's own code: what it raises, of whatever type (a typo, a missing package, a wrong shape), is
    a mistake in their file, so it is one line naming where in it, not a bug of rnnx's."""
    try:
        return code()
    except RnnxError:
        raise  # rnnx, called by their code, already names the mistake
    except Exception as e:
        where = user_frame(e, {file.resolve()}) or (file, e.lineno)  # a SyntaxError has no frame in the file
        raise user_error(e, what, where) from None


def model_files(model: nn.Module) -> set[Path]:
    """The files of the model's module classes that are the user's: neither rnnx's nor an installed package's."""
    # the forward's code, not inspect.getsourcefile: a user's module file is loaded outside sys.modules
    codes = {getattr(type(m).forward, "__code__", None) for m in model.modules()}
    files = {Path(code.co_filename).resolve() for code in codes if code is not None}
    return {f for f in files if not any(f.is_relative_to(d) for d in _NOT_USER_CODE)}


def user_frame(e: BaseException, files: set[Path]) -> tuple[Path, int] | None:
    """(file, line) of the innermost frame of `e`'s traceback that lies in one of `files`, if any."""
    frames = [(Path(f.filename).resolve(), f.lineno) for f in traceback.extract_tb(e.__traceback__)]
    return next((frame for frame in reversed(frames) if frame[0] in files), None)


def user_error(e: BaseException, what: str, where: tuple[Path, int]) -> RnnxError:
    message = next((m for m in str(e).splitlines() if m.strip()), "")
    return RnnxError(f"{what} raised {type(e).__name__} at {where[0]}:{where[1]}: {message}")
