"""Who owns each state tensor of an export, for the manifest: an rnnx op, or the model's own code.

The step graph shows it: an op's state enters its `ai.rnnx` node as one of the inputs after the op's
tensor inputs (`(*inputs, *past state)`, see `onnx_ops`). Every other state tensor (a conv buffer of the
last inputs, a position counter, a token-shift vector) is the model's: its code, not an op's kernel,
computes the next value, and the compiler carries it by a copy (`rnnx.compiler.state`).
"""
import onnx

from ..ops import OPS
from .onnx_ops import DOMAIN

MODEL = "model"  # the owner of state the model's own code keeps


def state_owners(step: onnx.ModelProto, names: list[str]) -> dict[str, str]:
    """State name -> owner: the name of the rnnx op whose node in the portable `step` graph (before any flavor
    rewrite) takes `past_<name>` as a state input, else "model"."""
    owners = {}
    for node in step.graph.node:
        op = OPS.get(node.op_type) if node.domain == DOMAIN else None
        if op is not None:
            owners.update((past, op.name) for past in node.input[len(op.inputs):])
    return {n: owners.get(f"past_{n}", MODEL) for n in names}
