"""rnnx ops as ONNX custom operators: schema, model-local function and exporter translation, all derived
from the op's `OpDef`.

Each op is a node `ai.rnnx::<name>` (version 1) with inputs `(*inputs, *past state)`, outputs
`(o, *present state)` and every attribute written on the node. Its model-local function has the same
domain and name; its body is the op's registered ONNX lowering (`rnnx/export/functions/<op>.py`:
`sequence` for prefill graphs, `step` for one token) in standard ONNX at `OPSET`, so any onnxruntime runs
the model with no plugin.
"""
import onnx
import onnxscript
from onnx.defs import OpSchema

from ..lowerings import choose
from ..ops import OPS, OpDef
from . import functions  # noqa: F401  (registers the function bodies)

DOMAIN, VERSION = "ai.rnnx", 1
OPSET = 20  # the standard opset of every graph and function body rnnx writes (torch's exporter default)
RNNX = onnxscript.values.Opset(DOMAIN, VERSION)
_ATTR_TYPES = {float: OpSchema.AttrType.FLOAT, int: OpSchema.AttrType.INT, str: OpSchema.AttrType.STRING}
_ONNX_TYPES = {"torch.float32": "tensor(float)", "torch.int64": "tensor(int64)"}


def schema(op: OpDef) -> OpSchema:
    """The op's OpSchema, with type and shape inference: `o` takes the shape of its `output_like` input (`v`),
    present state its past's."""
    state = [(s.name, _ONNX_TYPES[str(s.dtype)]) for s in op.state]
    s = OpSchema(
        op.name, DOMAIN, VERSION, doc=op.summary,
        inputs=[OpSchema.FormalParameter(n, "T") for n in op.inputs] + [OpSchema.FormalParameter(f"past_{n}", t) for n, t in state],
        outputs=[OpSchema.FormalParameter("o", "T")] + [OpSchema.FormalParameter(f"present_{n}", t) for n, t in state],
        type_constraints=[("T", ["tensor(float)"], "the op's tensor inputs")],
        attributes=[OpSchema.Attribute(n, _ATTR_TYPES[t], "", required=True) for n, t in op.attributes.items()],
    )
    like, first_state = op.inputs.index(op.output_like), len(op.inputs)

    def infer(ctx):
        ctx.set_output_type(0, ctx.get_input_type(like))
        for i in range(len(op.state)):
            ctx.set_output_type(1 + i, ctx.get_input_type(first_state + i))

    s.set_type_and_shape_inference_function(infer)
    return s


def register_schemas() -> None:
    """Register every rnnx op's schema with onnx (process-local), so the checker validates rnnx nodes."""
    for op in OPS.values():
        if not onnx.defs.has(op.name, DOMAIN):
            onnx.defs.register_schema(schema(op))


def function(op: OpDef, kind: str) -> onnx.FunctionProto:
    """The op's model-local function: its `sequence` (chunked) or `step` body, named `ai.rnnx::<name>`."""
    body = choose("onnx", op.name, kind).to_function_proto()
    body.domain, body.name = DOMAIN, op.name
    return body


def translation(op: OpDef):
    """The exporter's translation of the torch op: one `ai.rnnx` node carrying every attribute."""
    register_schemas()  # onnxscript learns the node's outputs from the schema
    n_tensors = len(op.inputs) + len(op.state)

    def translate(*args):
        return getattr(RNNX, op.name)(*args[:n_tensors], **dict(zip(op.attributes, args[n_tensors:])))

    return translate
