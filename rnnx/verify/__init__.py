"""`rnnx verify`: parity of an export, or of a compiled artifact, against PyTorch (and onnxruntime), with the
stated tolerances; an imported checkpoint's also against the checkpoint in its own framework."""
import contextlib
from pathlib import Path
from typing import Callable

from ..errors import RnnxError
from ..export.manifest import read_manifest
from ..manifest import ArtifactManifest
from ..runtime.artifact import EXPORT_COPY, read_artifact
from .checks import Check, run_checks
from .emulated import verify_emulated
from .runners import ArtifactRunner, OnnxRunner, TorchRunner
from .source import source_runner


def _onnx_runner(directory: Path, manifest: dict) -> OnnxRunner:
    return OnnxRunner(directory, manifest, "reference" if manifest.flavor == "standard" else "onnxruntime")


def verify(path: Path, *, prompt: int = 100, steps: int = 32, stream: int = 1000, seed: int = 0,
           on_note: Callable[[str], None] = lambda note: None) -> tuple[str, list[Check]]:
    """Verify an export directory (its graphs in onnxruntime, or the reference evaluator for the opset-27
    `standard` flavor, against PyTorch) or an artifact (the compiled code against PyTorch, then against
    the export's graphs); returns the backend's name and the checks. An export of a checkpoint is checked
    first against the checkpoint run by its own framework (the long stream too), when that is installed;
    when it is not, `on_note` is told so."""
    path = Path(path)
    if (path / ArtifactManifest.FILE).is_file():
        artifact = read_artifact(path)
        manifest = read_manifest(path / EXPORT_COPY)
        if manifest != artifact.export:
            raise RnnxError(f"{path / EXPORT_COPY} is not the export {path} was compiled from: its manifest differs")
        backend, references = ArtifactRunner(path), [TorchRunner(manifest), _onnx_runner(path / EXPORT_COPY, manifest)]
    else:
        manifest = read_manifest(path)
        backend, references = _onnx_runner(path, manifest), [TorchRunner(manifest)]
    checks = []
    with contextlib.ExitStack() as stack:
        source = source_runner(manifest, on_note)
        if source is not None:
            stack.callback(source.close)
            references.insert(0, source)
        for i, reference in enumerate(references):  # the long stream against the first reference only
            checks += run_checks(backend, reference, vocab=manifest.vocab, batch_size=manifest.batch_size,
                                 prompt=prompt, steps=steps, stream=stream if i == 0 else 0, seed=seed)
    return backend.name, checks


verify_export = verify

__all__ = ["verify", "verify_export", "verify_emulated", "Check"]
