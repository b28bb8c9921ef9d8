"""A model as the two graphs of DESIGN.md: `prefill` (tokens `(B, T)` or features `(B, T, C)`, T dynamic,
ops in their chunk form) and `step` (one token or vector), each with every state tensor as an explicit input
`past_*` and output `present_*`; the first input and output are named as the model's `Signature` says."""
import contextlib
import functools
import io
import logging
import re
import warnings

import onnx
import torch
from torch import nn
from torch.utils import _pytree as pytree

from ..errors import RnnxError
from ..manifest import Signature
from ..ops import OPS
from .onnx_ops import DOMAIN, OPSET, function, translation
from .source import model_files, user_error, user_frame

GRAPHS = {"prefill": "chunk", "step": "recurrent"}  # graph -> the form its ops run in


class StateIO(nn.Module):
    """`forward(inputs, *past) -> (outputs, *present)`: the model with its state flattened to tensors."""

    def __init__(self, model: nn.Module, spec: pytree.TreeSpec, mode: str):
        super().__init__()
        self.model, self.spec, self.mode = model, spec, mode

    def forward(self, inputs, *past):
        outputs, state = self.model(inputs, pytree.tree_unflatten(list(past), self.spec), mode=self.mode)
        return (outputs, *pytree.tree_leaves(state))


def flat_state(model: nn.Module, batch_size: int) -> tuple[list[str], list[torch.Tensor], pytree.TreeSpec]:
    """The model's initial state as named tensors: `0_state`, `1_running_max`, ... (layer, then field)."""
    leaves, spec = pytree.tree_flatten_with_path(model.initial_state(batch_size))
    names = ["_".join(str(getattr(k, "idx", getattr(k, "name", getattr(k, "key", k)))) for k in path) for path, _ in leaves]
    return names, [t for _, t in leaves], spec


def model_signature(model: nn.Module, batch_size: int) -> Signature:
    """The model's `signature` attribute; a model without one is a token model whose vocabulary is what one
    step's output scores (its logits)."""
    sig = getattr(model, "signature", None)
    if sig is not None:
        if not isinstance(sig, Signature) or sig.problems():
            raise RnnxError(f"{type(model).__name__}.signature must be an rnnx.manifest.Signature"
                            + (f": {sig.problems()[0]}" if isinstance(sig, Signature) else f", got {sig!r}"))
        return sig
    with torch.no_grad():
        logits, _ = model(torch.zeros(batch_size, 1, dtype=torch.long), model.initial_state(batch_size),
                          mode="recurrent")
    return Signature("tokens", logits.shape[-1], "logits", logits.shape[-1])


def export_graph(model: nn.Module, kind: str, batch_size: int, sig: Signature,
                 example_length: int = 67) -> onnx.ModelProto:
    """Export the `prefill` or `step` graph of `model`, with the model-local functions of its rnnx ops."""
    names, state, spec = flat_state(model, batch_size)
    T = 1 if kind == "step" else example_length
    example = torch.zeros(sig.input_shape(batch_size, T), dtype=getattr(torch, sig.dtype))
    args = (example, *(s.clone() for s in state))  # distinct tensors
    dynamic = ({1: torch.export.Dim("T", min=1, max=1 << 24)}, (None,) * len(state)) if kind == "prefill" else None
    table = {op.torch_op: translation(op) for op in OPS.values()}
    # What torch.export says is wrong with the model's code (data-dependent control flow, a dynamic length the
    # code specialises, a construct it cannot trace); anything else it raises is a bug and propagates. Imported
    # here, not at the top: torch.export imports them anyway, `import rnnx.export` should not (2 s).
    from torch._dynamo.exc import Unsupported, UserError
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode
    with _quiet():
        try:
            program = torch.export.export(StateIO(model, spec, GRAPHS[kind]), args, dynamic_shapes=dynamic)
        except (UserError, Unsupported, GuardOnDataDependentSymNode) as e:
            where = re.search(r'File "(.+)", line (\d+)', str(e))  # torch names the call that failed, if it can
            raise RnnxError(f"cannot trace {type(model).__name__} with torch.export"
                            f"{f' at {where[1]}:{where[2]}' if where else ''}: {_first_line(e)}") from None
        except Exception as e:  # raised by the user's own forward (a wrong shape, a typo) is their mistake
            where = user_frame(e, model_files(model))
            if where is None:
                raise
            raise user_error(e, f"tracing {type(model).__name__} with torch.export", where) from None
        _check_translatable(program)
        # Whatever torch.onnx.export raises now is a bug, ours or the exporter's: it keeps its traceback.
        onnx_program = torch.onnx.export(
            program, dynamo=True, verbose=False, opset_version=OPSET, custom_translation_table=table,
            input_names=[sig.input, *(f"past_{n}" for n in names)],
            output_names=[sig.output, *(f"present_{n}" for n in names)])
    proto = onnx_program.model_proto
    used = {n.op_type for n in proto.graph.node if n.domain == DOMAIN}
    proto.functions.extend(function(OPS[name], "sequence" if kind == "prefill" else "step") for name in sorted(used))
    return proto


def _check_translatable(program: torch.export.ExportedProgram) -> None:
    """Refuse, naming the module and op, a program with an op the ONNX exporter cannot translate. Decided
    before exporting, so that a failure of the export itself is never taken for the user's mistake."""
    ours, decomposable = {op.torch_op for op in OPS.values()}, torch.export.default_decompositions()
    # the checks the exporter erases before translating, e.g. `_assert_tensor_metadata` beside a `.float()`
    assertions = {torch.ops.aten._assert_tensor_metadata.default, torch.ops.aten._assert_async.default,
                  torch.ops.aten._assert_async.msg, torch.ops.aten._assert_scalar.default,
                  torch.ops.aten.sym_constrain_range_for_size.default}
    for node in program.graph.nodes:
        if node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload) and node.target not in ours \
                and not _torchlib().is_registered(node.target) and node.target not in decomposable \
                and node.target not in assertions and not _composite(node.target):
            path, module = (list(node.meta.get("nn_module_stack", {}).values())[-1:] or [("", "the model")])[0]
            raise RnnxError(f"cannot export module {path.removeprefix('model.') or '<root>'} ({_type_name(module)}): "
                            f"op {node.target.name()} has no ONNX translation (rnnx exports its own ops and standard "
                            "torch ops)")


def _composite(op: torch._ops.OpOverload) -> bool:
    """An op the exporter's decompositions rewrite into others by its implicit kernel (`aten.to.dtype`)."""
    return torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), "CompositeImplicitAutograd")


@functools.cache
def _torchlib():
    """The exporter's registry of torch ops with an ONNX translation (about a second to build)."""
    from torch.onnx._internal.exporter._registration import ONNXRegistry

    return ONNXRegistry.from_torchlib()


def _first_line(e: Exception) -> str:
    return next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)


def _type_name(t) -> str:
    return getattr(t, "__name__", str(t))


@contextlib.contextmanager
def _quiet():
    """torch.onnx reports progress and optional-package warnings on stdout and logging, and torch.export a
    failure's partial graph on stderr and its advice in logging: keep the CLI clean (a failure still raises)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript",
                                              "torch.fx.experimental.symbolic_shapes")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
