"""The lowering registry: what each backend turns an rnnx op into, registered by op name.

An op (`rnnx/ops/<op>/`) knows only its math. Each backend's package registers the op's lowerings with
`@lowering(backend, op, kind)`: the ONNX function bodies in `rnnx/export/functions/`, the TIR kernels in
`rnnx/kernels/` (Triton kernels later). A kind may have several lowerings, each applicable where its
`when(target, shapes)` holds (e.g. the chunked and the token-recurrent prefill, where each is faster);
`choose` takes the most preferred applicable one. This module imports nothing heavy, so registering
costs a backend's package no import of its backend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .errors import RnnxError

# Every backend and the kinds of lowering it needs from every op: the completeness test holds each op to this.
BACKENDS: dict[str, tuple[str, ...]] = {
    "onnx": ("sequence", "step"),  # model-local function bodies: of prefill graphs (any T) and step graphs
    "tir": ("step", "sequence"),   # kernels for `relax.call_tir_inplace`: T = 1, and a symbolic T
}


@dataclass(frozen=True)
class Lowering:
    """One implementation of `op`'s `kind` for `backend`: `fn` is what the backend consumes (an onnxscript
    function, a PrimFunc generator, ...), applicable where `when(target, shapes)` holds (always if None)."""

    backend: str
    op: str
    kind: str
    fn: Any
    when: Callable[[Any, Any], bool] | None = None
    preference: int = 0

    def applies(self, target, shapes) -> bool:
        return self.when is None or bool(self.when(target, shapes))


_LOWERINGS: dict[tuple[str, str, str], list[Lowering]] = {}


def lowering(backend: str, op: str, kind: str, *, when: Callable[[Any, Any], bool] | None = None,
             preference: int = 0) -> Callable:
    """Decorator registering the decorated object as a `backend` lowering of op `op`'s `kind`."""
    if kind not in BACKENDS.get(backend, ()):
        raise ValueError(f"{backend}: unknown backend or kind {kind!r}; backends and their kinds: {BACKENDS}")

    def register(fn):
        _LOWERINGS.setdefault((backend, op, kind), []).append(Lowering(backend, op, kind, fn, when, preference))
        return fn

    return register


def lowerings(backend: str, op: str, kind: str) -> list[Lowering]:
    """Every registered lowering of `op`'s `kind` for `backend`, most preferred first."""
    return sorted(_LOWERINGS.get((backend, op, kind), ()), key=lambda lw: -lw.preference)


def choose(backend: str, op: str, kind: str, target=None, shapes=None) -> Any:
    """The `fn` of the most preferred lowering of `op`'s `kind` for `backend` that applies at `target` and
    `shapes`. An op without any is a bug (`LookupError`); one whose lowerings all refuse this target or
    these shapes is a limit the user hit (`RnnxError`)."""
    candidates = lowerings(backend, op, kind)
    if not candidates:
        raise LookupError(f"op {op!r} has no {backend} lowering of kind {kind!r}")
    for candidate in candidates:
        if candidate.applies(target, shapes):
            return candidate.fn
    raise RnnxError(f"op {op}: no {backend} {kind} lowering applies to target {target} and shapes {shapes}")


def missing(ops: Iterable[str]) -> list[str]:
    """`backend/op/kind` for every kind a backend needs that an op of `ops` has no lowering of."""
    return [f"{backend}/{op}/{kind}" for op in ops for backend, kinds in BACKENDS.items() for kind in kinds
            if not _LOWERINGS.get((backend, op, kind))]
