"""`rnnx verify`: parity of an export, or of a compiled artifact, against PyTorch (and onnxruntime), with the
stated tolerances; an imported checkpoint's also against the checkpoint in its own framework; with data, the
task metric of the export or artifact next to PyTorch's (`quality`).

A quantized export (`rnnx quantize`) computes another function than its PyTorch model: its artifacts are held
to fp32 parity with its own graphs (`parity_references`), and the export and its artifacts are judged against
the fp32 model on the task (`quality`, QUANTIZED_TASK_TOLERANCE) and by the KL of their predictions from the fp32
export's along a long stream (`drift`); one with quantized activations is held to its graphs on the normalized
MSE (`numerics.QUANTIZED_ACTIVATIONS`: the rounding of an activation moves with fp32 rounding before it)."""
import contextlib
from pathlib import Path
from typing import Callable

from ..errors import RnnxError
from ..export.manifest import read_manifest
from ..fileio import sha256
from ..manifest import ArtifactManifest, ExportManifest
from ..numerics import QUANTIZED_ACTIVATIONS, Tolerance
from ..runtime.artifact import EXPORT_COPY, read_artifact
from .checks import Check, run_checks
from .drift import Drift, kl_drift
from .emulated import EmulatedRunner, verify_emulated
from .quality import Quality, task_quality
from .runners import ArtifactRunner, OnnxRunner, TorchRunner
from .source import source_runner


def _onnx_runner(directory: Path, manifest: dict) -> OnnxRunner:
    return OnnxRunner(directory, manifest, "reference" if manifest.flavor == "standard" else "onnxruntime")


def parity_reference(export: Path, manifest: ExportManifest):
    """The first of `parity_references`: PyTorch, or a quantized export's graphs, unfused."""
    if manifest.quantization is not None:
        return OnnxRunner(export, manifest, "onnxruntime-unfused")
    return TorchRunner(manifest)


def parity_references(export: Path, manifest: ExportManifest) -> list:
    """What compiled code of the export `export` must equal to fp32 rounding (`parity_tolerance`): PyTorch and
    the export's graphs; for a quantized export, its graphs alone, unfused (PyTorch runs the fp32 weights)."""
    first = parity_reference(export, manifest)
    return [first] if manifest.quantization is not None else [first, _onnx_runner(export, manifest)]


def parity_tolerance(manifest: ExportManifest) -> Tolerance | None:
    """What compiled code of the export is held to against `parity_references`: fp32's (None), or for quantized
    activations the normalized-MSE bound."""
    q = manifest.quantization
    return QUANTIZED_ACTIVATIONS if q is not None and q.activations is not None else None


def _manifest(path: Path) -> tuple[ExportManifest, Path | None]:
    """(the export's manifest, the export directory an artifact carries; None for an export)."""
    if (path / ArtifactManifest.FILE).is_file():
        artifact = read_artifact(path)
        manifest = read_manifest(path / EXPORT_COPY)
        if manifest != artifact.export:
            raise RnnxError(f"{path / EXPORT_COPY} is not the export {path} was compiled from: its manifest differs")
        return manifest, path / EXPORT_COPY
    return read_manifest(path), None


def _backend(path: Path, manifest: ExportManifest, carried: Path | None, emulate: bool = False):
    """What is under test: an artifact's compiled code (with `emulate`, its own program under the target's
    emulator), or an export's graphs."""
    if carried is not None:
        return EmulatedRunner(path) if emulate else ArtifactRunner(path)
    return _onnx_runner(path, manifest)


def _references(manifest: ExportManifest, carried: Path | None) -> list:
    """An artifact's `parity_references`; an export's PyTorch (a quantized export's nothing: see `drift`)."""
    if carried is not None:
        return parity_references(carried, manifest)
    return [] if manifest.quantization is not None else [TorchRunner(manifest)]


def verify(path: Path, *, prompt: int = 100, steps: int = 32, stream: int = 1000, seed: int = 0,
           on_note: Callable[[str], None] = lambda note: None) -> tuple[str, list[Check]]:
    """Verify an export directory (its graphs in onnxruntime, or the reference evaluator for the opset-27
    `standard` flavor, against PyTorch) or an artifact (the compiled code against PyTorch, then against
    the export's graphs); returns the backend's name and the checks. An export of a checkpoint is checked
    first against the checkpoint run by its own framework (the long stream too), when that is installed;
    when it is not, `on_note` is told so."""
    manifest, carried = _manifest(Path(path))
    backend, references = _backend(Path(path), manifest, carried), _references(manifest, carried)
    checks = []
    with contextlib.ExitStack() as stack:
        source = source_runner(manifest, on_note) if manifest.quantization is None else None
        if source is not None:
            stack.callback(source.close)
            references.insert(0, source)
        for i, reference in enumerate(references):  # the long stream against the first reference only
            checks += run_checks(backend, reference, signature=manifest.signature, batch_size=manifest.batch_size,
                                 prompt=prompt, steps=steps, stream=stream if i == 0 else 0, seed=seed,
                                 tolerance=parity_tolerance(manifest))
    return backend.name, checks


def quality(path: Path, data: Path, *, emulate: bool = False, window: int = 1024) -> Quality:
    """The task metric on `data` (see `rnnx.verify.quality`) of an export's graphs or an artifact's compiled
    code (with `emulate`, its own program under the target's emulator), next to PyTorch's (the fp32 model's:
    a quantized model is held to its format's QUANTIZED_TASK_TOLERANCE)."""
    from ..tokenizer import load_tokenizer

    path = Path(path)
    manifest, carried = _manifest(path)
    backend = _backend(path, manifest, carried, emulate)
    tokenizer = load_tokenizer(path, manifest) if manifest.signature.input == "tokens" else None
    return task_quality(data, manifest, backend, TorchRunner(manifest), tokenizer, window=0 if emulate else window)


def drift(path: Path, *, steps: int = 10_000, seed: int = 0) -> Drift | None:
    """For a quantized export or artifact, the KL of its predictions from the fp32 export's along a stream of
    `steps` (`rnnx.verify.drift`); None for an fp32 one, or a forecaster (no distribution to compare)."""
    manifest, carried = _manifest(Path(path))
    q = manifest.quantization
    if q is None or manifest.signature.output == "forecast":
        return None
    source = Path(q.source.export)
    if not (source / ExportManifest.FILE).is_file() or sha256(source / ExportManifest.FILE) != q.source.manifest_sha256:
        raise RnnxError(f"{path} was quantized from {source}, which is not there or has changed since: the KL "
                        "check runs against that fp32 export (re-quantize from the export you have)")
    backend = _backend(Path(path), manifest, carried)
    return kl_drift(backend, _onnx_runner(source, read_manifest(source)), manifest, steps=steps, seed=seed)


verify_export = verify

__all__ = ["verify", "verify_export", "verify_emulated", "quality", "drift", "parity_reference", "parity_references",
           "parity_tolerance", "Check", "Drift", "Quality"]
