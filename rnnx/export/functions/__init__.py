"""The ONNX function bodies of the rnnx ops, one module per op in standard ONNX at opset 20: `sequence`
(the chunked form, any T) for prefill graphs, `step` (one token) for step graphs. Each registers itself
with `@lowering("onnx", op, kind)`; importing this package registers them all."""
from . import aaren, causal_conv1d, decay_linear_attention, gated_delta_rule, sliding_window_attention  # noqa: F401
