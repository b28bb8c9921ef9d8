"""A model as the two graphs of DESIGN.md: `prefill` (tokens `(B, T)`, T dynamic, ops in their chunk form)
and `step` (one token), each with every state tensor as an explicit input `past_*` and output `present_*`."""
import contextlib
import io
import logging
import warnings

import onnx
import torch
from torch import nn
from torch.utils import _pytree as pytree

from ..errors import RnnxError
from ..ops import OPS
from .onnx_ops import DOMAIN, OPSET, function, translation

GRAPHS = {"prefill": "chunk", "step": "recurrent"}  # graph -> the form its ops run in


class StateIO(nn.Module):
    """`forward(tokens, *past) -> (logits, *present)`: the model with its state flattened to tensors."""

    def __init__(self, model: nn.Module, spec: pytree.TreeSpec, mode: str):
        super().__init__()
        self.model, self.spec, self.mode = model, spec, mode

    def forward(self, tokens, *past):
        logits, state = self.model(tokens, pytree.tree_unflatten(list(past), self.spec), mode=self.mode)
        return (logits, *pytree.tree_leaves(state))


def flat_state(model: nn.Module, batch_size: int) -> tuple[list[str], list[torch.Tensor], pytree.TreeSpec]:
    """The model's initial state as named tensors: `0_state`, `1_running_max`, ... (layer, then field)."""
    leaves, spec = pytree.tree_flatten_with_path(model.initial_state(batch_size))
    names = ["_".join(str(getattr(k, "idx", getattr(k, "name", getattr(k, "key", k)))) for k in path) for path, _ in leaves]
    return names, [t for _, t in leaves], spec


def export_graph(model: nn.Module, kind: str, batch_size: int, example_length: int = 67) -> onnx.ModelProto:
    """Export the `prefill` or `step` graph of `model`, with the model-local functions of its rnnx ops."""
    names, state, spec = flat_state(model, batch_size)
    T = 1 if kind == "step" else example_length
    args = (torch.zeros(batch_size, T, dtype=torch.long), *(s.clone() for s in state))  # distinct tensors
    dynamic = ({1: torch.export.Dim("T", min=1, max=1 << 24)}, (None,) * len(state)) if kind == "prefill" else None
    table = {op.torch_op: translation(op) for op in OPS.values()}
    with _quiet():
        try:
            program = torch.export.export(StateIO(model, spec, GRAPHS[kind]), args, dynamic_shapes=dynamic)
        except Exception as e:
            raise RnnxError(f"cannot trace {type(model).__name__} with torch.export: {_first_line(e)}") from None
        try:
            onnx_program = torch.onnx.export(
                program, dynamo=True, verbose=False, opset_version=OPSET, custom_translation_table=table,
                input_names=["tokens", *(f"past_{n}" for n in names)],
                output_names=["logits", *(f"present_{n}" for n in names)])
        except Exception as e:
            raise RnnxError(_explain_failure(program, e)) from None
    proto = onnx_program.model_proto
    used = {n.op_type for n in proto.graph.node if n.domain == DOMAIN}
    proto.functions.extend(function(OPS[name], "sequence" if kind == "prefill" else "step") for name in sorted(used))
    return proto


def _explain_failure(program: torch.export.ExportedProgram, error: Exception) -> str:
    """Name the module and op the exporter could not translate, else say what failed."""
    from torch.onnx._internal.exporter._registration import ONNXRegistry

    registry, ours = ONNXRegistry.from_torchlib(), {op.torch_op for op in OPS.values()}
    decomposable = torch.export.default_decompositions()
    for node in program.graph.nodes:
        if node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload) and node.target not in ours \
                and not registry.is_registered(node.target) and node.target not in decomposable:
            path, module = (list(node.meta.get("nn_module_stack", {}).values())[-1:] or [("", "the model")])[0]
            return (f"cannot export module {path.removeprefix('model.') or '<root>'} ({_type_name(module)}): op "
                    f"{node.target.name()} has no ONNX translation (rnnx exports its own ops and standard torch ops)")
    return f"ONNX export failed: {_first_line(error)}"


def _first_line(e: Exception) -> str:
    return next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)


def _type_name(t) -> str:
    return getattr(t, "__name__", str(t))


@contextlib.contextmanager
def _quiet():
    """torch.onnx reports progress and optional-package warnings on stdout and logging: keep the CLI clean."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
