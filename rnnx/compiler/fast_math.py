"""Legalizations of `exp` and `sigmoid` (fp32) as plain arithmetic, passed to `LegalizeOps` (so scoped to
rnnx's builds): TVM lowers `exp` to one libm `expf` call per element, which neither vectorises nor inlines;
in a ref-small prefill of 4K tokens the SiLU and gate sigmoids alone took 0.2 s of 1.3 s that way.
`kernels.fast_exp` is within 2 ulp of expf; a sigmoid built on it within 1e-7 absolute."""
from tvm import te, tirx

from ..kernels import fast_exp


def _unary(name: str, fn):
    def legalize(bb, call):
        x = call.args[0]
        if x.ty.dtype != "float32":
            return None  # LegalizeOps then uses TVM's own legalization
        return bb.call_te(lambda t: te.compute(t.shape, lambda *i: fn(t(*i)), name=name), x, primfunc_name_hint=name)

    return legalize


def _sigmoid(x):
    return tirx.const(1.0, "float32") / (tirx.const(1.0, "float32") + fast_exp(-x))


FAST_MATH = {"relax.exp": _unary("fast_exp", fast_exp), "relax.sigmoid": _unary("fast_sigmoid", _sigmoid)}
