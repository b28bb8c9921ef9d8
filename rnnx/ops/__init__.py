"""rnnx's op library: each op in its parallel, chunked and recurrent forms, declared once in `OPS`.

One folder per op: `parallel.py`, `chunk.py` and `recurrent.py` hold the forms, `reference.py` the fp64
definition the forms are tested against, `samples.py` the inputs tests draw, `__init__.py` the declaration
and the public function. The math only: backends register their lowerings of an op by its name
(`rnnx.lowerings`), so importing this package imports no onnx, onnxscript or tvm.
"""
from .aaren import AarenState, aaren
from .causal_conv1d import causal_conv1d
from .decay_linear_attention import decay_linear_attention, retnet_decay, transnormer_decay
from .gated_delta_rule import gated_delta_rule
from .registry import MODES, OPS, OpDef, StateTensor
from .sliding_window_attention import SlidingWindowAttentionState, sliding_window_attention

__all__ = [
    "decay_linear_attention", "transnormer_decay", "retnet_decay", "gated_delta_rule", "aaren", "AarenState",
    "sliding_window_attention", "SlidingWindowAttentionState", "causal_conv1d", "MODES", "OPS", "OpDef",
    "StateTensor",
]
