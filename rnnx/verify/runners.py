"""Backends that run a model one way or another, behind one interface, so parity checks compare any two.

A runner works on numpy arrays: `prefill(inputs, state) -> (outputs (B, T, N), state)` and
`step(inputs, state) -> (outputs (B, 1, N), state)`, the inputs int64 tokens `(B, T)` / `(B, 1)` or float32
features `(B, T, C)` / `(B, 1, C)` as the manifest's signature says, with `state` the list of state tensors in
manifest order (None for the initial state).
"""
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.utils import _pytree as pytree

from ..export.graphs import flat_state
from ..export.onnx_ops import register_schemas
from ..export.source import load_model
from ..manifest import ExportManifest


class TorchRunner:
    """The PyTorch model the export came from: chunk form for prefill, recurrent form for steps."""

    name = "PyTorch"

    def __init__(self, manifest: ExportManifest):
        self.model = load_model(manifest.model.source, manifest.model.seed)
        _, initial, self.spec = flat_state(self.model, manifest.batch_size)
        self.initial = [t.numpy() for t in initial]

    @torch.no_grad()
    def _run(self, tokens, state, mode):
        state = pytree.tree_unflatten([torch.from_numpy(np.array(s)) for s in (state or self.initial)], self.spec)
        logits, state = self.model(torch.from_numpy(tokens), state, mode=mode)
        return logits.numpy(), [t.numpy() for t in pytree.tree_leaves(state)]

    def prefill(self, tokens, state=None):
        return self._run(tokens, state, "chunk")

    def step(self, tokens, state=None):
        return self._run(tokens, state, "recurrent")


class OnnxRunner:
    """The exported graphs, in onnxruntime (`onnxruntime-unfused`: without its graph optimizations, so that a
    quantized export's dequantized weights are multiplied exactly as written) or in onnx's reference evaluator
    (for opset-27 `standard` graphs)."""

    def __init__(self, directory: Path, manifest: ExportManifest, engine: str):
        self.name = {"onnxruntime": "onnxruntime", "onnxruntime-unfused": "onnxruntime, unfused",
                     "reference": "ONNX reference evaluator"}[engine]
        self.past, self.input = [s.past for s in manifest.state], manifest.signature.input
        self.sessions = {kind: self._load(Path(directory) / g.file, engine) for kind, g in manifest.graphs.items()}
        self.initial = self._initializers(Path(directory) / manifest.graphs["prefill"].file)

    def _load(self, path: Path, engine: str):
        if engine == "reference":
            from onnx.reference import ReferenceEvaluator

            register_schemas()
            return ReferenceEvaluator(onnx.load(path))
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # the state inputs have defaults (initializers) on purpose; no warnings
        if engine == "onnxruntime-unfused":  # DequantizeLinear then MatMul as written: fused into MatMulNBits,
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # it rounds its own way
        # The graph's hash matched its manifest, so it is what rnnx wrote: failing to load it is a bug.
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _initializers(self, path: Path):
        """The prefill graph's state defaults: the model's initial state as exported."""
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path, load_external_data=False).graph.initializer
                 if t.name in self.past}
        return [inits[n] for n in self.past]

    def _run(self, kind, tokens, state):
        feeds = {self.input: tokens, **dict(zip(self.past, state or self.initial))}
        outputs, *state = self.sessions[kind].run(None, feeds)
        return outputs, state

    def prefill(self, tokens, state=None):
        return self._run("prefill", tokens, state)

    def step(self, tokens, state=None):
        return self._run("step", tokens, state)


class ArtifactRunner:
    """A compiled artifact through `rnnx.runtime.Session` (state held in the session, set per call)."""

    def __init__(self, directory: Path):
        from ..runtime import Session

        self.session = Session(directory)
        self.name = f"rnnx on {self.session.manifest.target.name}"

    def _run(self, call, tokens, state):
        if state is None:
            self.session.reset()
        else:
            self.session.set_state(state)
        logits = call(tokens)
        return logits, list(self.session.state.values())

    def prefill(self, tokens, state=None):
        return self._run(self.session.prefill, tokens, state)

    def step(self, tokens, state=None):
        return self._run(lambda t: self.session.step(t[:, 0])[:, None], tokens, state)
