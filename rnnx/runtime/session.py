"""`Session`: run a compiled artifact. Needs only the TVM runtime and numpy.

A session owns its state tensors, allocated once; the compiled kernels update them in place, so memory
does not grow with the number of tokens. Sessions share nothing: each has its own state and VMs, so
sessions in different threads do not interfere.
"""
import os
import tempfile
from pathlib import Path

import numpy as np
import tvm
from tvm.runtime.vm import VirtualMachine

from ..errors import RnnxError
from ..targets import check_runnable_here
from .artifact import INITIAL_STATE, read_artifact


class Session:
    def __init__(self, artifact: Path):
        self.path = Path(artifact)
        self.manifest = read_artifact(self.path)
        target = self.manifest["target"]
        check_runnable_here(target["name"], target["arch"], target["cpu_flags"])
        device = tvm.cpu()
        self._vm = {kind: VirtualMachine(tvm.runtime.load_module(str(self.path / lib)), device)
                    for kind, lib in self.manifest["libraries"].items()}
        self.layout = self.manifest["state"]
        with np.load(self.path / INITIAL_STATE, allow_pickle=False) as initial:
            self._initial = [initial[s["name"]] for s in self.layout]
        self._state = [tvm.runtime.tensor(x.copy(), device) for x in self._initial]
        self._token = tvm.runtime.tensor(np.zeros((self.batch_size, 1), np.int64), device)

    @property
    def batch_size(self) -> int:
        return self.manifest["export"]["batch_size"]

    @property
    def state_bytes(self) -> int:
        """Bytes of recurrent state this session holds: fixed at compile time, whatever the stream length."""
        return sum(int(np.prod(s["shape"])) * np.dtype(s["dtype"]).itemsize for s in self.layout)

    def reset(self) -> None:
        """Back to the state before any token, in the same buffers."""
        for buffer, initial in zip(self._state, self._initial):
            buffer.copyfrom(initial)

    def prefill(self, tokens) -> np.ndarray:
        """Run `tokens` `(B, T)` (or `(T,)`) through the chunked prefill from the current state; returns
        logits `(B, T, vocab)` and leaves the state after the last token, ready for `step`."""
        tokens = np.asarray(tokens, dtype=np.int64).reshape(self.batch_size, -1)
        return self._run("prefill", tvm.runtime.tensor(tokens)).numpy()

    def step(self, token) -> np.ndarray:
        """One token per sequence (an int or `(B,)`); returns logits `(B, vocab)`."""
        self._token.copyfrom(np.asarray(token, dtype=np.int64).reshape(self.batch_size, 1))
        return self._run("step", self._token).numpy()[:, 0]

    def _run(self, kind: str, tokens):
        logits, *present = self._vm[kind]["main"](tokens, *self._state)
        self._state = present  # the kernels wrote the state in place: these are the same buffers
        return logits

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of the current state, by manifest name."""
        return {s["name"]: t.numpy() for s, t in zip(self.layout, self._state)}

    def save_state(self, path: Path) -> None:
        """Write the state to `path` (numpy .npz, no pickle), atomically."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **self.state)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    def load_state(self, path: Path) -> None:
        """Load a state saved by `save_state`, checked against this artifact's state layout."""
        try:
            saved = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise RnnxError(f"cannot read state file {path}: {e}") from None
        with saved:
            for spec in self.layout:
                if spec["name"] not in saved:
                    raise RnnxError(f"state file {path} has no tensor {spec['name']}")
                x = saved[spec["name"]]
                if list(x.shape) != spec["shape"] or str(x.dtype) != spec["dtype"]:
                    raise RnnxError(f"state file {path}: {spec['name']} is {x.dtype}{list(x.shape)}, "
                                    f"the artifact needs {spec['dtype']}{spec['shape']}")
            self.set_state([saved[spec["name"]] for spec in self.layout])

    def set_state(self, values: list[np.ndarray]) -> None:
        """Copy `values` (manifest order) into the session's state buffers."""
        for buffer, value in zip(self._state, values, strict=True):
            buffer.copyfrom(np.ascontiguousarray(value))
