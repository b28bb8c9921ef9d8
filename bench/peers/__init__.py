"""The runtimes bench/step_latency.py compares, one module each.

Every module has `prepare(ctx) -> dict` (runs in the parent: exports, compiles or lowers the model into
`ctx.workdir` and returns a JSON-able spec; raises `Unavailable` with the reason when it cannot) and
`Runner(spec, threads)` with `reset()`, `step(token) -> logits` and `prefill(tokens (1, T)) -> logits`,
which runs in a fresh worker process (measure.py) so that its resident memory is its own. Modules import
their runtime at the top: a worker imports only the module it measures.
"""
import importlib

RUNTIMES = ("rnnx_compiled", "rnnx_int8", "rnnx_int4", "rnnx_int8_a8", "rnnx_int4_a8", "ort", "ort_int8", "ort_int4",
            "ort_int4_exact", "executorch", "executorch_8da4w", "eager")


class Unavailable(Exception):
    """A runtime cannot run this config; the message says why and goes into the table."""


def load(runtime: str):
    return importlib.import_module(f"peers.{runtime}")


class Context:
    """What `prepare` gets: the config, a scratch directory, the model's initial state (`initial_state.npz`,
    by manifest name) and PyTorch's logits for the parity check (`reference.npy`), and the config's
    exports, each made once on demand."""

    PARITY_STEPS = 16

    def __init__(self, config: str, workdir, seed: int = 0):
        import numpy as np
        import torch

        from rnnx.export.graphs import flat_state
        from rnnx.export.source import load_model

        from .measure import stream_tokens

        self.config, self.workdir, self.seed = config, workdir, seed
        self._exports = {}
        model = load_model(config, seed=seed)
        names, state, _ = flat_state(model, 1)
        self.initial_state, self.reference = workdir / "initial_state.npz", workdir / "reference.npy"
        np.savez(self.initial_state, **{n: s.numpy() for n, s in zip(names, state)})
        state, logits = model.initial_state(1), []
        with torch.no_grad():
            for token in stream_tokens(self.PARITY_STEPS):
                out, state = model.step(torch.tensor([token]), state)
                logits.append(out[0].numpy())
        np.save(self.reference, np.stack(logits))

    def export(self, flavor: str):
        """The directory of `rnnx export CONFIG --flavor FLAVOR` (prefill.onnx, step.onnx, manifest.json)."""
        if flavor not in self._exports:
            from rnnx.export import export_model

            out = self.workdir / f"export-{flavor}"
            export_model(self.config, out, flavor=flavor, seed=self.seed)
            self._exports[flavor] = out
        return self._exports[flavor]
