"""A checkpoint run by the framework that defines it (fla or transformers), as a parity reference.

It runs in a process of its own (`python -m rnnx.verify.source_worker DIR`): fla's Triton kernels need
`TRITON_INTERPRET=1` on CPU, set before triton is imported, which torch.export in this process already did;
and a source framework's imports, warnings and globals stay out of rnnx's. Requests and replies are
safetensors blobs on the worker's stdin and stdout, framed by their length: tensors and a little JSON
metadata, nothing executable. The worker keeps each call's cache under an id, so a reply's state can be
continued from (steps after a prefill) without sending the framework's cache objects across.
"""
import importlib.util
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..manifest import ExportManifest
from ..models.checkpoint import is_checkpoint, read_checkpoint
from ..models.family import Family, family_of

_LENGTH = struct.Struct("<Q")


def write_message(stream, tensors: dict[str, np.ndarray], **metadata) -> None:
    from safetensors.numpy import save

    blob = save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata={"json": json.dumps(metadata)})
    stream.write(_LENGTH.pack(len(blob)) + blob)
    stream.flush()


def read_message(stream) -> tuple[dict[str, np.ndarray], dict] | None:
    from safetensors.numpy import load

    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    blob = stream.read(_LENGTH.unpack(head)[0])
    n = int.from_bytes(blob[:8], "little")  # the safetensors header: its metadata holds ours
    metadata = json.loads(json.loads(blob[8:8 + n])["__metadata__"]["json"])
    return load(blob), metadata


def missing_framework(family: Family) -> str | None:
    """Why the source framework cannot run here (a package not installed), or None."""
    needed = [family.framework] + (["triton"] if family.framework == "fla" else [])
    absent = [p for p in needed if importlib.util.find_spec(p) is None]
    return f"{', '.join(absent)} not installed" if absent else None


class SourceState(list):
    """The source's state in rnnx's layout (numpy, manifest order), and the worker's id of its own cache."""

    def __init__(self, tensors, cache_id: int):
        super().__init__(tensors)
        self.cache_id = cache_id


class SourceRunner:
    """The checkpoint in its own framework, behind the runner interface of `rnnx.verify.runners`. A state
    passed in must be one this runner returned."""

    def __init__(self, directory: Path):
        self.family = family_of(read_checkpoint(directory))
        self.name = f"{self.family.framework} {self.family.model_type}"
        self.log = tempfile.TemporaryFile()
        self.worker = subprocess.Popen([sys.executable, "-m", "rnnx.verify.source_worker", str(directory)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self.calls = 0

    def _run(self, tokens, state):
        if state is not None and not isinstance(state, SourceState):
            raise TypeError("SourceRunner continues only from a state it returned")
        self.calls += 1
        write_message(self.worker.stdin, {"tokens": tokens}, cache=state.cache_id if state is not None else None,
                      save=self.calls)
        reply = read_message(self.worker.stdout)
        if reply is None:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace").strip().splitlines()[-12:]
            raise RuntimeError(f"the {self.name} worker exited ({self.worker.wait()}):\n" + "\n".join(tail))
        tensors, _ = reply
        n = len(tensors) - 1
        return tensors["logits"], SourceState([tensors[f"state_{i}"] for i in range(n)], self.calls)

    def prefill(self, tokens, state=None):
        return self._run(tokens, state)

    def step(self, tokens, state=None):
        return self._run(tokens, state)

    def close(self):
        if self.worker.poll() is None:
            self.worker.stdin.close()
            self.worker.wait()
        self.log.close()


def source_runner(manifest: ExportManifest, on_note) -> SourceRunner | None:
    """The runner of the checkpoint an export came from; None for other exports, and (told to `on_note`)
    where its framework is not installed."""
    directory = Path(manifest.model.source)
    if not is_checkpoint(directory):
        return None
    family = family_of(read_checkpoint(directory))
    if family.framework is None:  # rnnx's own model: TorchRunner runs its source
        return None
    missing = missing_framework(family)
    if missing:
        on_note(f"not checked against the checkpoint's own framework ({missing}): against rnnx's PyTorch model only")
        return None
    return SourceRunner(directory)
