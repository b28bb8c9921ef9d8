"""ONNX function bodies (opset 20) of the causal conv: `sequence` is `ops/causal_conv1d/parallel.py` for any
T, `step` one iteration of its `recurrent.py`. Shapes: x `(B, T, D)`, weight `(D, W)`, bias `(D,)`, state
`(B, D, W - 1)` (the last W - 1 inputs, oldest first), y `(B, T, D)`.

ONNX's `Conv` takes its `group` (here D) as a static attribute, which a function body cannot read from its
inputs: the taps are gathered and weighted instead. The activation attribute is a string that a body
cannot branch on when it is built: both results are computed and `Where` picks one (a scalar condition).
"""
from onnxscript import FLOAT, script
from onnxscript import opset20 as op

from ...lowerings import lowering


@lowering("onnx", "causal_conv1d", "sequence")
@script()
def sequence(x: FLOAT, weight: FLOAT, bias: FLOAT, state: FLOAT, activation: str, mode: str):
    """Token t's window is the timeline's inputs t .. t + W - 1: the state's W - 1 inputs, then the sequence.
    Channels last, so that the weighting and the sum over the W taps run along contiguous channels (in
    onnxruntime 7x faster than channels first, where it is D small batched products)."""
    timeline = op.Concat(op.Transpose(state, perm=[0, 2, 1]), x, axis=1)          # (B, W - 1 + T, D)
    T = op.Shape(x, start=1, end=2)
    start, step = op.Constant(value_int=0), op.Constant(value_int=1)
    taps = op.Unsqueeze(op.Range(start, op.Squeeze(T), step), [1]) + op.Range(start, op.Squeeze(
        op.Shape(weight, start=1, end=2)), step)                                  # (T, W)
    windows = op.Gather(timeline, taps, axis=1)                                   # (B, T, W, D)
    y = op.ReduceSum(windows * op.Transpose(weight, perm=[1, 0]), [2], keepdims=0) + bias
    silu = op.Equal(op.Constant(value_string=activation), op.Constant(value_string="silu"))
    y = op.Where(silu, y * op.Sigmoid(y), y)
    return y, op.Transpose(op.Slice(timeline, T, op.Shape(timeline, start=1, end=2), [1]), perm=[0, 2, 1])


@lowering("onnx", "causal_conv1d", "step")
@script()
def step(x: FLOAT, weight: FLOAT, bias: FLOAT, state: FLOAT, activation: str, mode: str):
    """T = 1: the window is the state's W - 1 inputs and the token; the new state drops the oldest."""
    window = op.Concat(state, op.Transpose(x, perm=[0, 2, 1]), axis=2)            # (B, D, W)
    y = op.Unsqueeze(op.ReduceSum(window * weight, [2], keepdims=0) + bias, [1])  # (B, 1, D)
    silu = op.Equal(op.Constant(value_string=activation), op.Constant(value_string="silu"))
    y = op.Where(silu, y * op.Sigmoid(y), y)
    return y, op.Slice(window, [1], op.Shape(window, start=2, end=3), [2])
