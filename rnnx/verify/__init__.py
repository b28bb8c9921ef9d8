"""`rnnx verify`: parity of an export against the PyTorch model it came from, with the stated tolerances."""
from pathlib import Path

from ..export.manifest import read_manifest
from .checks import Check, run_checks
from .runners import OnnxRunner, TorchRunner


def verify_export(directory: Path, *, prompt: int = 100, steps: int = 32, stream: int = 1000,
                  seed: int = 0) -> tuple[str, list[Check]]:
    """Run the export's graphs (onnxruntime, or the reference evaluator for the opset-27 `standard` flavor)
    against PyTorch; returns the backend's name and the checks."""
    manifest = read_manifest(directory)
    backend = OnnxRunner(directory, manifest, "reference" if manifest["flavor"] == "standard" else "onnxruntime")
    vocab = manifest["graphs"]["prefill"]["outputs"][0]["shape"][-1]
    checks = run_checks(backend, TorchRunner(manifest), vocab=vocab, batch_size=manifest["batch_size"],
                        prompt=prompt, steps=steps, stream=stream, seed=seed)
    return backend.name, checks


__all__ = ["verify_export", "Check"]
