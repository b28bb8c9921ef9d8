"""`Session`: run a compiled artifact. Needs only the TVM runtime and numpy.

A session owns the artifact's whole state (every tensor of the manifest: an op's, or the model's own) and
the step's workspace (its intermediates and logits), allocated once; the compiled kernels update the state
in place and the step allocates nothing, so memory does not grow with the number of tokens. Sessions share
nothing: each has its own state, workspace and VMs, so sessions in different threads do not interfere.

`VmSession` is what a local session and one on a board over RPC (`rnnx.profile.rpc.RemoteSession`) share:
loading, the state and its checks, and the checks of what they are fed.

Threads: `threads`, else $TVM_NUM_THREADS, else a measured choice that falls back to one thread while the
cores are busy (`rnnx.runtime.threads`); `realtime=True` for control loops.
"""
import functools
import time
from pathlib import Path

import numpy as np
import tvm
from tvm.runtime.vm import VirtualMachine

from ..errors import RnnxError
from ..fileio import atomic_file
from ..targets import check_runnable_here
from .artifact import WORKSPACE_SUFFIX, load_initial_state, read_artifact, read_state_file
from .checks import check_inputs, check_step_input
from .threads import ThreadPolicy, fixed_by_user, realtime as realtime_mode, set_threads


def vm_entry(vm: VirtualMachine) -> tuple:
    """(`main` of a compiled graph, the arguments it takes after its inputs): the compiler lifts a
    workspace out of static graphs (the step), which `main` then takes as its last argument."""
    if not vm.module.implements_function("main" + WORKSPACE_SUFFIX):
        return vm["main"], ()
    return vm["main"], (vm["main" + WORKSPACE_SUFFIX](),)


def _address(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]


class VmSession:
    """An artifact's VMs, state and input buffers on `device`, its libraries loaded by `load_module(path)`."""

    def __init__(self, artifact: Path, device, load_module):
        self.path = Path(artifact)
        self.manifest = read_artifact(self.path)
        if not self.manifest.libraries:
            raise RnnxError(f"{self.path} holds no VM libraries (packaging {self.manifest.packaging}): run it with "
                            "its own program, e.g. `rnnx verify --emulate`")
        self.device = device
        self.signature, self.batch_size = self.manifest.signature, self.manifest.batch_size
        self._vm = {kind: VirtualMachine(load_module(lib), device) for kind, lib in self.manifest.libraries.items()}
        self._main = {kind: vm_entry(vm) for kind, vm in self._vm.items()}
        self._initial = load_initial_state(self.path, self.manifest)
        self._state = [tvm.runtime.tensor(x.copy(), device) for x in self._initial]
        sig = self.signature  # the step's input buffer: (B, 1) tokens or (B, 1, C) features
        self._input = tvm.runtime.tensor(np.zeros(sig.input_shape(self.batch_size, 1), sig.dtype), device)

    @property
    def state_bytes(self) -> int:
        """Bytes of recurrent state this session holds: fixed at compile time, whatever the stream length."""
        return sum(s.bytes for s in self.manifest.state)

    def reset(self) -> None:
        """Back to the state before any token, in the same buffers."""
        self.set_state(self._initial)

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of the current state, by manifest name."""
        return {s.name: t.numpy() for s, t in zip(self.manifest.state, self._state)}

    def set_state(self, values: list[np.ndarray]) -> None:
        """Copy `values` (manifest order, each of its tensor's shape and dtype) into the state buffers."""
        if len(values) != len(self._state):
            raise RnnxError(f"the artifact's state has {len(self._state)} tensors, got {len(values)}")
        for spec, value in zip(self.manifest.state, values):
            value = np.asarray(value)
            if (list(value.shape), str(value.dtype)) != (spec.shape, spec.dtype):
                raise RnnxError(f"state tensor {spec.name} must be {spec.dtype}{spec.shape}, "
                                f"got {value.dtype}{list(value.shape)}")
        for buffer, value in zip(self._state, values):
            buffer.copyfrom(np.ascontiguousarray(value))

    def save_state(self, path: Path) -> None:
        """Write the whole state to `path` (numpy .npz by name, no pickle), atomically."""
        with atomic_file(path) as f:
            np.savez(f, **self.state)

    def load_state(self, path: Path) -> None:
        """Load a state saved by `save_state`, checked against this artifact's state layout."""
        self.set_state(read_state_file(Path(path), self.manifest.state))


class Session(VmSession):
    """An artifact on this machine: `prefill(inputs)`, `step(input)`, `reset()`, the state and its files.
    The inputs are tokens or feature vectors, as the artifact's `signature` says. `threads`: TVM's workers
    (default: measured, see `rnnx.runtime.threads`); `realtime`: one thread, pinned, SCHED_FIFO."""

    def __init__(self, artifact: Path, threads: int | None = None, realtime: bool = False):
        manifest = read_artifact(artifact, check_files=False)  # refuse another machine's code before hashing it
        check_runnable_here(manifest.target.name, manifest.target.arch, manifest.target.cpu_flags)
        self._fixed = set_threads(1 if realtime else threads)
        super().__init__(artifact, tvm.cpu(), lambda lib: tvm.runtime.load_module(str(Path(artifact) / lib)))
        self._input_view = np.from_dlpack(self._input)  # a numpy view: writing it sets the step's input
        main, workspace = self._main["step"]
        # the step's arguments never change (the state is updated in place), so they are bound once
        self._step = functools.partial(main, self._input, *self._state, *workspace)
        self._step_out = None  # a view of the step's output, once seen to live in its workspace
        self._fast_token = self.signature.input == "tokens" and self.batch_size == 1
        self._policy = None
        if threads is None and not realtime and not fixed_by_user():
            self._policy = ThreadPolicy(self._step)
            self.reset()  # the measured steps moved the state
        if realtime:
            realtime_mode()

    @property
    def threads(self) -> int:
        """TVM's workers the next step uses."""
        return self._policy.threads if self._policy is not None else self._fixed

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

    def prefill(self, inputs) -> np.ndarray:
        """Run `inputs` (tokens `(B, T)` or features `(B, T, C)`; without B for batch 1) through the chunked
        prefill from the current state; returns the outputs `(B, T, output_size)` (logits, scores or forecast)
        and leaves the state after the last step, ready for `step`."""
        inputs = check_inputs(inputs, self.signature, self.batch_size)
        main, workspace = self._main["prefill"]
        if self._policy is not None:
            set_threads(self._policy.prefill_threads)
        try:  # the kernels update the state in place: the outputs after the first are self._state's buffers
            return np.from_dlpack(main(tvm.runtime.tensor(inputs), *self._state, *workspace)[0]).copy()
        finally:
            if self._policy is not None:
                set_threads(self._policy.threads)

    def step(self, value) -> np.ndarray:
        """One step per sequence: a token (an int, or `(B,)`) or a feature vector (`(C,)`, or `(B, C)`); returns
        the outputs `(B, output_size)`."""
        if self._fast_token and type(value) is int and 0 <= value < self.signature.input_size:
            self._input_view[0, 0] = value  # the common case, without building an array to check
        else:
            self._input_view[:, 0] = check_step_input(value, self.signature, self.batch_size)
        if self._policy is not None:
            start = time.perf_counter()
            out = self._run_step()
            self._policy.observe(time.perf_counter() - start)
            return out
        return self._run_step()

    def _run_step(self) -> np.ndarray:
        if self._step_out is not None:
            self._step()
            return self._step_out[:, 0].copy()
        out = np.from_dlpack(self._step()[0])
        if _address(out) in {_address(view) for view in self._workspace_views()}:
            self._step_out = out  # the same buffer at every step, overwritten: hand out copies
        return out[:, 0].copy()
