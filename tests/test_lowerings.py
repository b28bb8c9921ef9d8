"""The lowering registry: every op has every lowering each backend needs, and `choose` picks by preference
and applicability."""
import pytest

import rnnx.export.functions  # noqa: F401  (registers the ONNX function bodies)
import rnnx.kernels  # noqa: F401  (registers the TIR kernels)
from rnnx import lowerings as registry
from rnnx.errors import RnnxError
from rnnx.export.onnx_ops import function
from rnnx.lowerings import BACKENDS, choose, lowering, lowerings, missing
from rnnx.ops import OPS


def test_every_op_has_every_lowering_each_backend_needs():
    assert missing(OPS) == []


def test_an_op_without_lowerings_is_missing_every_kind_of_every_backend():
    assert missing(["unlowered"]) == [f"{b}/unlowered/{k}" for b, kinds in BACKENDS.items() for k in kinds]


@pytest.mark.parametrize("kind", BACKENDS["onnx"])
@pytest.mark.parametrize("op_name", sorted(OPS))
def test_onnx_function_takes_the_declared_inputs_state_and_attributes(op_name, kind):
    op, body = OPS[op_name], function(OPS[op_name], kind)
    assert list(body.input) == [*op.inputs, *(s.name for s in op.state)]
    assert list(body.attribute) == list(op.attributes)
    assert len(body.output) == 1 + len(op.state)


@pytest.fixture
def empty_registry(monkeypatch):
    """An empty registry for this test only."""
    monkeypatch.setattr(registry, "_LOWERINGS", {})


def test_choose_takes_the_most_preferred_lowering_that_applies(empty_registry):
    lowering("tir", "op", "sequence")("chunked")
    lowering("tir", "op", "sequence", preference=1, when=lambda target, shapes: shapes[0][1] < 64)("short")
    assert choose("tir", "op", "sequence", shapes=[(1, 16)]) == "short"
    assert choose("tir", "op", "sequence", shapes=[(1, 4096)]) == "chunked"
    assert [lw.fn for lw in lowerings("tir", "op", "sequence")] == ["short", "chunked"]


def test_choose_names_what_has_no_lowering(empty_registry):
    with pytest.raises(LookupError, match="op 'op' has no tir lowering of kind 'step'"):
        choose("tir", "op", "step")
    lowering("tir", "op", "step", when=lambda target, shapes: target == "gpu")("gpu_step")
    with pytest.raises(RnnxError, match="op op: no tir step lowering applies to target cpu"):
        choose("tir", "op", "step", target="cpu")


def test_a_lowering_of_an_undeclared_backend_or_kind_is_refused(empty_registry):
    with pytest.raises(ValueError, match="unknown backend or kind"):
        lowering("tir", "op", "prefill")
    with pytest.raises(ValueError, match="unknown backend or kind"):
        lowering("cuda", "op", "step")
