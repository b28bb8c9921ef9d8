"""The op registry: one `OpDef` per rnnx op ties every form of it together.

An `OpDef` names the op's tensor inputs, its recurrent state tensors and its attributes once. From that
single declaration the registry derives the `torch.library` custom op (schema, kernel dispatching on
`mode`, fake kernel), the op's initial state and its state size; the ONNX schema reads the same
declaration. What backends lower the op to (ONNX function bodies, TIR and Triton kernels) registers itself
by op name from the backend's package (`rnnx.lowerings`), so this package imports no backend.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch

MODES = ("parallel", "chunk", "recurrent")
_TORCH_TYPES = {float: "float", int: "int", str: "str"}
_SHORT_DTYPES = {torch.float32: "f32", torch.int64: "i64"}
_LIB = torch.library.Library("rnnx", "DEF")


@dataclass(frozen=True)
class StateTensor:
    """One tensor of an op's recurrent state. `shape` names its dimensions (`B`, `H`, `Dk`, `Dv` or an
    integer attribute such as `window`); `fill` is its value before the first token; `sampler(shape, dims,
    generator)` draws a value some earlier tokens could have left (for tests), 0.5 · N(0, 1) when None."""

    name: str
    shape: tuple[str, ...]
    dtype: torch.dtype = torch.float32
    fill: float = 0.0
    sampler: Callable[[tuple[int, ...], dict[str, int], torch.Generator], torch.Tensor] | None = None

    def concrete_shape(self, dims: dict[str, int]) -> tuple[int, ...]:
        return tuple(dims[d] for d in self.shape)

    def nbytes(self, dims: dict[str, int]) -> int:
        return math.prod(self.concrete_shape(dims)) * self.dtype.itemsize

    def sample(self, dims: dict[str, int], generator: torch.Generator) -> torch.Tensor:
        shape = self.concrete_shape(dims)
        if self.sampler is not None:
            return self.sampler(shape, dims, generator)
        return 0.5 * torch.randn(shape, generator=generator, dtype=self.dtype)


@dataclass
class OpDef:
    """Declaration of one rnnx op.

    Every form has the signature `form(*inputs, *state, **attributes) -> (o, *state)`, where `o` has
    `v`'s shape `(B, T, H, Dv)` and dtype, and each state tensor keeps its shape and dtype. A form
    takes only the attributes it names; `mode` chooses the form. `sample_inputs(B, T, H, Dk, Dv, dtype,
    generator, regime)` returns seeded `(inputs, attributes)` (all but `mode` and `chunk_size`) for tests:
    typical values for `regime="typical"`, or the stress the op knows by that name (`near_zero` or
    `very_negative` decays, `huge_scores`), typical values for a regime that does not concern it.
    """

    name: str
    inputs: tuple[str, ...]
    state: tuple[StateTensor, ...]
    attributes: dict[str, type]
    forms: dict[str, Callable]
    reference: Callable
    sample_inputs: Callable
    summary: str
    linear_attention_rule: str | None = None  # update_rule when ONNX's LinearAttention can spell the op
    torch_op: Any = None
    kernel: Callable | None = None
    state_type: type | None = None

    @property
    def qualified_name(self) -> str:
        return f"rnnx::{self.name}"

    def schema(self) -> str:
        args = [f"Tensor {n}" for n in self.inputs + tuple(s.name for s in self.state)]
        args += [f"{_TORCH_TYPES[t]} {n}" for n, t in self.attributes.items()]
        outs = ", ".join(["Tensor"] * (1 + len(self.state)))
        return f"({', '.join(args)}) -> ({outs})"

    def dims(self, k: torch.Tensor, v: torch.Tensor, attrs: dict[str, Any]) -> dict[str, int]:
        B, _, H, Dk = k.shape
        return dict(B=B, H=H, Dk=Dk, Dv=v.shape[-1], **{n: a for n, a in attrs.items() if type(a) is int})

    def initial_state(self, dims: dict[str, int], device=None) -> tuple[torch.Tensor, ...]:
        return tuple(torch.full(s.concrete_shape(dims), s.fill, dtype=s.dtype, device=device) for s in self.state)

    def state_bytes(self, dims: dict[str, int]) -> int:
        return sum(s.nbytes(dims) for s in self.state)

    @staticmethod
    def call(fn: Callable, *args, **attrs):
        """Call a form or the reference with `(*inputs, *state)` and the attributes it takes."""
        params = inspect.signature(fn).parameters
        return fn(*args, **{n: a for n, a in attrs.items() if n in params})

    def __call__(self, *inputs: torch.Tensor, state, mode: str, **attrs):
        """Validate, fill in the initial state, run the custom op; returns `(o, state)`."""
        if mode not in MODES:
            raise ValueError(f"{self.name}: mode must be one of {MODES}, got {mode!r}")
        k, v = inputs[self.inputs.index("k")], inputs[self.inputs.index("v")]
        if k.dim() != 4 or v.dim() != 4 or k.shape[:3] != v.shape[:3]:
            raise ValueError(f"{self.name}: k and v must be (B, T, H, D) with equal B, T, H; "
                             f"got k {tuple(k.shape)}, v {tuple(v.shape)}")
        dims = self.dims(k, v, attrs)
        if state is None:
            state = self.initial_state(dims, device=k.device)
        state = (state,) if isinstance(state, torch.Tensor) else tuple(state)
        for s, spec in zip(state, self.state, strict=True):
            if tuple(s.shape) != spec.concrete_shape(dims):
                raise ValueError(f"{self.name}: state {spec.name} must have shape "
                                 f"{spec.concrete_shape(dims)} {spec.shape}, got {tuple(s.shape)}")
        o, *new_state = self.torch_op(*inputs, *state, *(attrs[n] if n != "mode" else mode for n in self.attributes))
        return o, (new_state[0] if self.state_type is None else self.state_type(*new_state))


OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    """Define `op` as the torch custom op `rnnx::<name>` (one node under torch.export) and record it."""
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} is already registered")
    if set(op.forms) != set(MODES):
        raise ValueError(f"op {op.name!r} must define the forms {MODES}")
    n_in, attr_names = len(op.inputs) + len(op.state), list(op.attributes)

    def kernel(*args):
        attrs = dict(zip(attr_names, args[n_in:]))
        return tuple(op.call(op.forms[attrs.pop("mode")], *args[:n_in], **attrs))

    def fake(*args):
        v = args[op.inputs.index("v")]
        return (torch.empty_like(v),) + tuple(torch.empty_like(s) for s in args[len(op.inputs):n_in])

    op.kernel = kernel
    _LIB.define(op.name + op.schema())
    _LIB.impl(op.name, kernel, "CompositeExplicitAutograd")
    torch.library.register_fake(op.qualified_name, fake, lib=_LIB)
    op.torch_op = getattr(torch.ops.rnnx, op.name).default
    if len(op.state) > 1:
        op.state_type = NamedTuple(_camel(op.name) + "State", [(s.name, torch.Tensor) for s in op.state])
    OPS[op.name] = op
    return op


def describe(dims: dict[str, int]) -> list[dict[str, Any]]:
    """One row per registered op: its forms, state tensors and state bytes per head at `dims`."""
    one_head = dims | {"B": 1, "H": 1}
    return [{"op": op.name, "forms": list(op.forms), "summary": op.summary,
             "state": [f"{s.name}[{','.join(d for d in s.shape if d not in 'BH')}] {_SHORT_DTYPES[s.dtype]}"
                       for s in op.state],
             "bytes_per_head": op.state_bytes(one_head)} for op in OPS.values()]


def _camel(name: str) -> str:
    return "".join(w.capitalize() for w in name.split("_"))
