"""ExecuTorch 1.5.1 with XNNPACK: the model's step as a program with the state as explicit inputs and
outputs, run by `executorch.runtime`.

rnnx's ops are `torch.library` custom ops with no out-variant kernel, which ExecuTorch cannot run:
`to_executorch` fails with "Missing out variants: {'rnnx::...'}". `prepare` tries them first; when they do
not lower, the programs are traced with each op's call replaced by the op's own plain-torch form (the same
Python functions its custom-op kernel dispatches to), which is numerically the same model, and `prepare`
checks the programs against the rnnx model with its custom ops.

Prefill is a second program of a fixed PREFILL_BLOCK tokens, called T / PREFILL_BLOCK times with the state
fed back (the remainder, if any, goes through the step program): an ExecuTorch program has static shapes,
and lowering one per length (the chunk form unrolls its loop over blocks) takes minutes at 16K tokens. The
program is the chunk form, or the parallel form where the chunk form does not lower; where neither does,
prefill runs the step program token by token.

`prepare(ctx, transform, tolerance)` lowers the model `transform` makes of it (executorch_8da4w: torchao's
int8-activation, int4-weight linear layers), checked against that model to `tolerance`.
"""
import contextlib
import time
from pathlib import Path

import numpy as np
import torch
from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
from executorch.runtime import Runtime

LABEL = "ExecuTorch + XNNPACK"
THREADS = (1, 2)
PREFILL_BLOCK = 1024
PREFILL_FORMS = ("chunk", "parallel")  # aaren's chunk form needs cummax, which ExecuTorch lacks
# Against the rnnx model with its custom ops, each output relative to its scale, max(1, max|output|): aaren's
# denominator grows to ~500 over a 1024-token block, where one fp32 ulp is 6e-5.
TOLERANCE = 1e-4


def prepare(ctx, transform=lambda model: model, tolerance: float = TOLERANCE) -> dict:
    from rnnx.export.graphs import StateIO, flat_state
    from rnnx.export.source import load_model

    model = transform(load_model(ctx.config, seed=ctx.seed))
    names, state, spec = flat_state(model, 1)
    with torch.no_grad():  # the checks start from the state after some tokens, not from zeros
        state = StateIO(model, spec, "chunk")(random_tokens(100), *state)[1:]
    args = {T: (random_tokens(T), *(s.clone() for s in state)) for T in (1, PREFILL_BLOCK)}  # distinct tensors
    start = time.perf_counter()
    step, custom_ops_error = try_lower(StateIO(model, spec, "recurrent"), args[1])
    with contextlib.nullcontext() if step else plain_torch_ops():
        step = step or lower(StateIO(model, spec, "recurrent"), args[1])
        failures = {}
        for mode in PREFILL_FORMS:
            prefill, failures[mode] = try_lower(StateIO(model, spec, mode), args[PREFILL_BLOCK])
            if prefill:
                break
    prefill_form = mode if prefill else None
    programs = {"step": (step, "recurrent", 1)} | ({"prefill": (prefill, mode, PREFILL_BLOCK)} if prefill else {})
    paths, errors = {}, {}
    for kind, (program, form, T) in programs.items():
        paths[kind] = ctx.workdir / f"executorch-{kind}.pte"
        paths[kind].write_bytes(program)
        errors[kind] = check(paths[kind], StateIO(model, spec, form), args[T], kind, tolerance)
    return {"programs": {k: str(p) for k, p in paths.items()}, "initial_state": str(ctx.initial_state),
            "state_names": names, "prefill_block": PREFILL_BLOCK, "lower_s": time.perf_counter() - start,
            "custom_ops_error": custom_ops_error, "prefill_form": prefill_form,
            "prefill_failures": {m: e for m, e in failures.items() if e}, "error_vs_rnnx_model": errors}


def try_lower(module: torch.nn.Module, args: tuple) -> tuple[bytes | None, str | None]:
    """The ExecuTorch program, or None and the first line of why it does not lower."""
    try:
        return lower(module, args), None
    except Exception as e:  # noqa: BLE001 - the caller falls back to another form
        return None, next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)


@contextlib.contextmanager
def plain_torch_ops():
    """Trace rnnx's ops as their plain-torch forms instead of as custom-op nodes."""
    from rnnx.ops import OPS

    saved = {name: op.torch_op for name, op in OPS.items()}
    try:
        for op in OPS.values():
            op.torch_op = op.kernel  # the custom op's own kernel: dispatches on mode to the form
        yield
    finally:
        for name, op in OPS.items():
            op.torch_op = saved[name]


def random_tokens(T: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(T).integers(0, 256, (1, T)))


def lower(module: torch.nn.Module, args: tuple) -> bytes:
    """torch.export -> XNNPACK partitions -> ExecuTorch program. RMSNorm's mean, the per-token select and
    squeeze of the recurrent form and the embedding stay portable ops between the XNNPACK subgraphs."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with torch.no_grad():
        program = torch.export.export(module, args)
    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def check(path: Path, module: torch.nn.Module, args: tuple, kind: str, tolerance: float = TOLERANCE) -> float:
    """The largest difference of the program's logits and new state from the rnnx model's (custom ops),
    each relative to max(1, max|expected|)."""
    outputs = Runtime.get().load_program(path).load_method("forward").execute(list(args))
    with torch.no_grad():
        expected = module(*args)
    error = max(float(torch.where(a == b, 0, (a - b).abs()).nan_to_num(torch.inf).max())  # inf == inf is exact
                / max(1.0, float(b.nan_to_num(posinf=0, neginf=0).abs().max()))
                for a, b in zip(outputs, expected))
    if error > tolerance:
        raise AssertionError(f"ExecuTorch {kind} program differs from the rnnx model by {error:.2e} > {tolerance}")
    return error


class Runner:
    def __init__(self, spec: dict, threads: int):
        _unsafe_reset_threadpool(threads)  # only takes effect before a method is loaded
        runtime = Runtime.get()
        self.methods = {k: runtime.load_program(p).load_method("forward") for k, p in spec["programs"].items()}
        self.block = spec["prefill_block"]
        with np.load(spec["initial_state"]) as initial:
            self.initial = [torch.from_numpy(initial[n]) for n in spec["state_names"]]
        self.token = torch.zeros(1, 1, dtype=torch.long)
        self.reset()

    def reset(self) -> None:
        self.state = [s.clone() for s in self.initial]

    def step(self, token: int) -> torch.Tensor:
        self.token[0, 0] = token
        return self._run("step", self.token)

    def prefill(self, tokens: np.ndarray) -> list[torch.Tensor]:
        tokens = torch.from_numpy(tokens)
        whole = tokens.shape[1] - tokens.shape[1] % self.block if "prefill" in self.methods else 0
        logits = [self._run("prefill", tokens[:, i:i + self.block]) for i in range(0, whole, self.block)]
        return logits + [self.step(int(t)) for t in tokens[0, whole:]]

    def _run(self, kind: str, tokens: torch.Tensor) -> torch.Tensor:
        # execute copies its inputs and returns fresh outputs, so feeding the state back is safe
        logits, *self.state = self.methods[kind].execute([tokens, *self.state])
        return logits
