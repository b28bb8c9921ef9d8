"""A 100K-token recurrent stream against the chunk form: catches drift that short sequences hide."""
import pytest

from rnnx.numerics import compare
from rnnx.ops import OPS

from .cases import make_case
from .test_forms import run

STREAM = 100_000


@pytest.mark.slow
@pytest.mark.parametrize("op_name", sorted(OPS))
def test_recurrent_stream_of_100k_tokens_matches_chunk_form(op_name):
    inputs, state, attrs = make_case(op_name, STREAM, B=1, H=2, D=8, with_state=False)
    o_chunk, s_chunk = run(op_name, "chunk", inputs, state, attrs)
    o_rec, s_rec = run(op_name, "recurrent", inputs, state, attrs)
    tail = compare(o_rec[:, -1000:], o_chunk[:, -1000:])
    assert tail.passed, f"drift over the last 1000 of {STREAM} tokens: {tail}"
    assert compare(o_rec, o_chunk).passed
    for a, e in zip(s_rec, s_chunk, strict=True):
        assert compare(a, e).passed
