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
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import torch

MODES = ("parallel", "chunk", "recurrent")
_TORCH_TYPES = {float: "float", int: "int", str: "str"}
_SHORT_DTYPES = {torch.float32: "f32", torch.int64: "i64"}
_LIB = torch.library.Library("rnnx", "DEF")


@dataclass(frozen=True)
class StateTensor:
    """One tensor of an op's recurrent state. `shape` names its dimensions (`B`, `H`, `Dk`, `Dv`, the sizes
    an op's `input_dims` gives, or an integer attribute such as `window`); `fill` is its value before the
    first token; `sampler(shape, dims, generator)` draws a value some earlier tokens could have left (for
    tests), 0.5 · N(0, 1) when None."""

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

    Every form has the signature `form(*inputs, *state, **attributes) -> (o, *state)`, where `o` has the
    shape and dtype of the input named `output_like` (`v`, `(B, T, H, Dv)`, for the attention-like ops)
    and each state tensor keeps its shape and dtype. A form takes only the attributes it names; `mode`
    chooses the form. `sample_inputs(B, T, H, Dk, Dv, dtype, generator, regime)` returns seeded
    `(inputs, attributes)` (all but `mode` and `chunk_size`) for tests: typical values for
    `regime="typical"`, or the stress the op knows by that name (`near_zero` or `very_negative` decays,
    `huge_scores`), typical values for a regime that does not concern it.

    `input_dims(inputs by name)` checks the inputs' shapes (`ValueError` naming the fault) and returns the
    sizes the state shapes name; None means attention-like inputs: k `(B, T, H, Dk)` and v `(B, T, H, Dv)`.
    `typical_dims` fills in the sizes of `describe`'s table that no head size gives (a conv's width).
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
    standard_op: str | None = None  # the standard ONNX op the `standard` and `ort` flavors spell it as
    output_like: str = "v"  # the input whose shape and dtype the output takes
    input_dims: Callable[[dict[str, torch.Tensor]], dict[str, int]] | None = None
    typical_dims: dict[str, int] = field(default_factory=dict)
    torch_op: Any = None
    kernel: Callable | None = None
    state_type: type | None = None

    def __post_init__(self):
        if self.linear_attention_rule is not None and self.standard_op is None:
            self.standard_op = "LinearAttention"

    @property
    def qualified_name(self) -> str:
        return f"rnnx::{self.name}"

    def schema(self) -> str:
        args = [f"Tensor {n}" for n in self.inputs + tuple(s.name for s in self.state)]
        args += [f"{_TORCH_TYPES[t]} {n}" for n, t in self.attributes.items()]
        outs = ", ".join(["Tensor"] * (1 + len(self.state)))
        return f"({', '.join(args)}) -> ({outs})"

    def dims(self, inputs: Sequence[torch.Tensor], attrs: dict[str, Any]) -> dict[str, int]:
        """The sizes the state shapes name, from the op's `inputs` (declared order, shapes checked) and its
        integer attributes."""
        named = dict(zip(self.inputs, inputs, strict=True))
        sizes = self.input_dims(named) if self.input_dims is not None else _attention_dims(self.name, named)
        return sizes | {n: a for n, a in attrs.items() if type(a) is int}

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
        dims = self.dims(inputs, attrs)
        if state is None:
            state = self.initial_state(dims, device=inputs[0].device)
        state = (state,) if isinstance(state, torch.Tensor) else tuple(state)
        for s, spec in zip(state, self.state, strict=True):
            if tuple(s.shape) != spec.concrete_shape(dims):
                raise ValueError(f"{self.name}: state {spec.name} must have shape "
                                 f"{spec.concrete_shape(dims)} {spec.shape}, got {tuple(s.shape)}")
        o, *new_state = self.torch_op(*inputs, *state, *(attrs[n] if n != "mode" else mode for n in self.attributes))
        return o, (new_state[0] if self.state_type is None else self.state_type(*new_state))


def _attention_dims(name: str, inputs: dict[str, torch.Tensor]) -> dict[str, int]:
    k, v = inputs["k"], inputs["v"]
    if k.dim() != 4 or v.dim() != 4 or k.shape[:3] != v.shape[:3]:
        raise ValueError(f"{name}: k and v must be (B, T, H, D) with equal B, T, H; "
                         f"got k {tuple(k.shape)}, v {tuple(v.shape)}")
    B, _, H, Dk = k.shape
    return dict(B=B, H=H, Dk=Dk, Dv=v.shape[-1])


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
        like = args[op.inputs.index(op.output_like)]
        return (torch.empty_like(like),) + tuple(torch.empty_like(s) for s in args[len(op.inputs):n_in])

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:n_in])
        ctx.attrs = inputs[n_in:]

    def backward(ctx, *grads):
        """Gradients by running the chosen form again under autograd (its ops are plain torch): training a
        model on rnnx ops costs one more forward of each op, as activation checkpointing does."""
        wanted = [need and t.is_floating_point() for need, t in zip(ctx.needs_input_grad, ctx.saved_tensors)]
        args = [t.detach().requires_grad_(w) for t, w in zip(ctx.saved_tensors, wanted)]
        with torch.enable_grad():
            outputs = kernel(*args, *ctx.attrs)
        pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None and o.requires_grad]
        found = iter(torch.autograd.grad([o for o, _ in pairs], [a for a, w in zip(args, wanted) if w],
                                         [g for _, g in pairs], allow_unused=True) if pairs and any(wanted) else ())
        return tuple(next(found) if w else None for w in wanted) + (None,) * len(attr_names)

    op.kernel = kernel
    _LIB.define(op.name + op.schema())
    _LIB.impl(op.name, kernel, "CompositeExplicitAutograd")
    torch.library.register_fake(op.qualified_name, fake, lib=_LIB)
    torch.library.register_autograd(op.qualified_name, backward, setup_context=setup_context, lib=_LIB)
    op.torch_op = getattr(torch.ops.rnnx, op.name).default
    if len(op.state) > 1:
        op.state_type = NamedTuple(_camel(op.name) + "State", [(s.name, torch.Tensor) for s in op.state])
    OPS[op.name] = op
    return op


def describe(dims: dict[str, int]) -> list[dict[str, Any]]:
    """One row per registered op: its forms, state tensors and state bytes per head at `dims` (a head's
    channels `D` are its `Dk`)."""
    one_head = {"D": dims.get("Dk", 0)} | dims | {"B": 1, "H": 1}
    return [{"op": op.name, "forms": list(op.forms), "summary": op.summary,
             "state": [f"{s.name}[{','.join(d for d in s.shape if d not in 'BH')}] {_SHORT_DTYPES[s.dtype]}"
                       for s in op.state],
             "bytes_per_head": op.state_bytes(op.typical_dims | one_head)} for op in OPS.values()]


def _camel(name: str) -> str:
    return "".join(w.capitalize() for w in name.split("_"))
