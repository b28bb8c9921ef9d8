"""`Session`: run a compiled artifact. Needs only the TVM runtime and numpy.

A session owns its state tensors and the step's workspace (its intermediates and logits), allocated once;
the compiled kernels update the state in place and the step allocates nothing, so memory does not grow with
the number of tokens. Sessions share nothing: each has its own state, workspace and VMs, so sessions in
different threads do not interfere.

Threads: TVM's runtime uses half the CPUs on x86 unless told (it assumes hyper-threading), so a session
sets the number of worker threads itself: `threads`, else $TVM_NUM_THREADS, else every CPU this process
may run on.
"""
import functools
import os
import tempfile
from pathlib import Path

import numpy as np
import tvm
from tvm.runtime.vm import VirtualMachine

from ..errors import RnnxError
from ..targets import check_runnable_here
from .artifact import INITIAL_STATE, WORKSPACE_SUFFIX, read_artifact


_ASKED = os.environ.get("TVM_NUM_THREADS")  # the user's choice, before set_threads rewrites the variable


def set_threads(threads: int | None = None) -> int:
    """Use `threads` of TVM's workers (else $TVM_NUM_THREADS as it was at import, else every CPU we may run
    on) in the calling thread's pool and in every pool made from now on. TVM sizes a pool once, from
    $TVM_NUM_THREADS, and can then use fewer workers but not more, so the variable is set to the larger
    of the request and the CPU count. (In TVM 0.27 a pool told to use fewer workers does not always use
    more again when told: a process that needs both counts should ask for the larger one first.)"""
    cpus = len(os.sched_getaffinity(0))
    threads = threads or int(_ASKED or cpus)
    os.environ["TVM_NUM_THREADS"] = str(max(threads, cpus))
    tvm.get_global_func("runtime.config_threadpool")(1, threads)  # 1: all cores of the biggest kind
    return threads


def vm_entry(vm: VirtualMachine) -> tuple:
    """(`main` of a compiled graph, the arguments it takes after its inputs): the compiler lifts a
    workspace out of static graphs (the step), which `main` then takes as its last argument."""
    if not vm.module.implements_function("main" + WORKSPACE_SUFFIX):
        return vm["main"], ()
    return vm["main"], (vm["main" + WORKSPACE_SUFFIX](),)


def _address(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]


class Session:
    def __init__(self, artifact: Path, threads: int | None = None):
        self.path = Path(artifact)
        self.manifest = read_artifact(self.path)
        target = self.manifest["target"]
        check_runnable_here(target["name"], target["arch"], target["cpu_flags"])
        self.threads = set_threads(threads)
        device = tvm.cpu()
        self._main = {kind: vm_entry(VirtualMachine(tvm.runtime.load_module(str(self.path / lib)), device))
                      for kind, lib in self.manifest["libraries"].items()}
        self.layout = self.manifest["state"]
        with np.load(self.path / INITIAL_STATE, allow_pickle=False) as initial:
            self._initial = [initial[s["name"]] for s in self.layout]
        self._state = [tvm.runtime.tensor(x.copy(), device) for x in self._initial]
        self._token = tvm.runtime.tensor(np.zeros((self.batch_size, 1), np.int64), device)
        self._token_in = np.from_dlpack(self._token)  # a numpy view: writing it sets the step's input
        main, workspace = self._main["step"]
        # the step's arguments never change (the state is updated in place), so they are bound once
        self._step = functools.partial(main, self._token, *self._state, *workspace)
        self._step_logits = None  # a view of the step's logits, once seen to live in its workspace

    @property
    def batch_size(self) -> int:
        return self.manifest["export"]["batch_size"]

    @property
    def state_bytes(self) -> int:
        """Bytes of recurrent state this session holds: fixed at compile time, whatever the stream length."""
        return sum(int(np.prod(s["shape"])) * np.dtype(s["dtype"]).itemsize for s in self.layout)

    @property
    def workspace_bytes(self) -> int:
        """Bytes of the step's preallocated intermediates and outputs (views into a few storages)."""
        extents = {}
        for view in self._workspace_views():
            start = _address(view)
            extents[start] = max(extents.get(start, 0), view.nbytes)  # views of one storage start at its base
        return sum(extents.values())

    def _workspace_views(self) -> list[np.ndarray]:
        return [np.from_dlpack(t) for _, workspace in self._main.values() for w in workspace for t in w]

    def reset(self) -> None:
        """Back to the state before any token, in the same buffers."""
        for buffer, initial in zip(self._state, self._initial):
            buffer.copyfrom(initial)

    def prefill(self, tokens) -> np.ndarray:
        """Run `tokens` `(B, T)` (or `(T,)`) through the chunked prefill from the current state; returns
        logits `(B, T, vocab)` and leaves the state after the last token, ready for `step`."""
        tokens = np.asarray(tokens, dtype=np.int64).reshape(self.batch_size, -1)
        return np.from_dlpack(self._run("prefill", tvm.runtime.tensor(tokens))).copy()

    def step(self, token) -> np.ndarray:
        """One token per sequence (an int or `(B,)`); returns logits `(B, vocab)`."""
        self._token_in[:, 0] = token
        if self._step_logits is not None:
            self._step()
            return self._step_logits[:, 0].copy()
        logits = np.from_dlpack(self._step()[0])
        if _address(logits) in {_address(view) for view in self._workspace_views()}:
            self._step_logits = logits  # the same buffer at every step, overwritten: hand out copies
        return logits[:, 0].copy()

    def _run(self, kind: str, tokens):
        # the kernels update the state in place: the outputs after the logits are self._state's buffers
        main, workspace = self._main[kind]
        return main(tokens, *self._state, *workspace)[0]

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
