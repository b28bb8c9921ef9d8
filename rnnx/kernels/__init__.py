"""Hand-written TIR kernels of the rnnx ops, for `relax.call_tir_inplace`.

One module per op, each with two generators taking the shapes of the op's inputs then its state tensors
(OpDef order) and the op's attributes:

- `step(shapes, attrs)`: the PrimFunc for one token (T = 1);
- `sequence(shapes, attrs)`: the PrimFunc for a prefill whose T entry in `shapes` is a symbolic
  `tvm.tirx.Var` (int64); one compiled kernel serves every T >= 1.

Every PrimFunc has the parameters `(*inputs, *state, o)`: the state buffers are read and updated in
place, `o` fp32, shaped as the op's `output_like` input (`(B, T, H, Dv)`; a conv's `(B, T, D)`), is written
fully. Call it with `relax.call_tir_inplace(f, [*inputs, *state], inplace_indices=[-1, n_inputs, ...,
n_inputs + n_state - 1], out_ty=[o, *state])`.

Each module registers its generators with `register(op, kind, build)` (`rnnx.lowerings`); importing this
package registers them all. No module here imports tvm at import time (each generator imports it when
called), so registering costs nothing.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

from ..lowerings import lowering


_DECAY_SHAPES = {1: "(H,)", 3: "(B, T, H)", 4: "(B, T, H, Dk)"}


def linear_dims(shapes: list[tuple], decay_name: str, ranks: tuple[int, ...] = (1, 3)) -> tuple:
    """`(B, T, H, Dk, Dv, decay shape, decay strides)` of a linear-attention op, whose q, k, v come first
    and whose log-decay (4th input) has one of `ranks`: `(H,)` per head, `(B, T, H)` per token or
    `(B, T, H, Dk)` per key dimension. The strides view a per-head or per-token decay as `(B, T, H)`, zero
    strides broadcasting a per-head one, and a per-key one as itself."""
    (B, L, H, Dk), Dv, dshape = shapes[0], shapes[2][3], tuple(shapes[3])
    if len(dshape) not in ranks:
        raise ValueError(f"{decay_name} must be {' or '.join(_DECAY_SHAPES[r] for r in ranks)}, got {dshape}")
    strides = {1: (0, 0, 1), 3: (L * H, H, 1), 4: (L * H * Dk, H * Dk, Dk, 1)}[len(dshape)]
    return B, L, H, Dk, Dv, dshape, strides


def tile(n: int, widths=(16, 8, 4, 2)) -> int:
    """The widest of `widths` dividing `n` (1 if none): a vector width or a row-block size."""
    return next((w for w in widths if n % w == 0), 1)


Macros = NamedTuple("Macros", [(name, Any) for name in ("gemm", "lane_reduce", "decay_mask", "attend", "carry")])


@functools.cache
def macros() -> Macros:
    """TVMScript macros shared by the kernels (imports tvm). Macro parameter names must not collide with
    the names of the calling PrimFunc's variables, hence the trailing underscores.

    TVM 0.27 on CPU: an allocation stays on the stack (so LLVM can keep it in registers) only with scope
    "global" and under 1 KiB; a "local" one, and a scalar `let` read inside a vectorised loop (turned into
    a "local" buffer), become a `TVMBackendAllocWorkspace` call. Hence small scratch is
    `T.alloc_buffer(..., scope="global")` and scalars used in vectorised loops are stored in one.
    """
    from tvm.script import tirx as T

    @T.macro
    def gemm(out_, a_, b_, m_, k_, n_, accumulate_: bool):
        """`out_[m_, n_] (+)= a_[m_, k_] @ b_[k_, n_]` on 2-D buffers, register-blocked: blocks of up to 4
        rows times up to 32 vectorised columns."""
        mb_ = T.meta_var(tile(m_, (4, 2)))
        nb_ = T.meta_var(tile(n_, (32, 16, 8, 4, 2)))
        for m0, n0 in T.grid(m_ // mb_, n_ // nb_):
            acc_ = T.alloc_buffer((mb_, nb_), "float32")
            for mi in T.unroll(mb_):
                for ni in T.vectorized(nb_):
                    if accumulate_:
                        acc_[mi, ni] = out_[m0 * mb_ + mi, n0 * nb_ + ni]
                    else:
                        acc_[mi, ni] = T.float32(0)
            for kk in range(k_):
                for mi in T.unroll(mb_):
                    for ni in T.vectorized(nb_):
                        acc_[mi, ni] = acc_[mi, ni] + a_[m0 * mb_ + mi, kk] * b_[kk, n0 * nb_ + ni]
            for mi in T.unroll(mb_):
                for ni in T.vectorized(nb_):
                    out_[m0 * mb_ + mi, n0 * nb_ + ni] = acc_[mi, ni]

    @T.macro
    def lane_reduce(part_, lanes_: int, combine_):
        # fold the `lanes_` partial results in part_[0:lanes_] into part_[0] (a tree of vector ops)
        if lanes_ >= 16:
            for li in T.vectorized(8):
                part_[li] = combine_(part_[li], part_[li + 8])
        if lanes_ >= 8:
            for li in T.vectorized(4):
                part_[li] = combine_(part_[li], part_[li + 4])
        if lanes_ >= 4:
            for li in T.vectorized(2):
                part_[li] = combine_(part_[li], part_[li + 2])
        if lanes_ >= 2:
            part_[0] = combine_(part_[0], part_[1])

    @T.macro
    def decay_mask(gb_, eb_, dm_, run_, c_: int):
        """From a block's log decays gb_ (C,): eb_[t] = exp(gb_[0] + ... + gb_[t]) and the mask
        dm_[t, s] = exp(gb_[s+1] + ... + gb_[t]), 0 above the diagonal, each segment summed directly
        (as ops/blocks.segsum) and exponentiated by the vectorised fast_exp."""
        run_[0] = T.float32(0)
        for t_ in range(c_):
            run_[0] = run_[0] + gb_[t_]
            eb_[t_] = run_[0]
        for c0_ in range(c_):  # column c0_ of log Γ
            run_[0] = T.float32(0)
            for t_ in range(c_):
                if t_ < c0_:
                    dm_[t_, c0_] = T.float32("-inf")
                else:
                    if t_ > c0_:
                        run_[0] = run_[0] + gb_[t_]
                    dm_[t_, c0_] = run_[0]
        for t_ in T.vectorized(c_):
            eb_[t_] = fast_exp(eb_[t_])
        for t_ in range(c_):
            for c0_ in T.vectorized(c_):
                dm_[t_, c0_] = fast_exp(dm_[t_, c0_])

    @T.macro
    def attend(out_, qs_, qe_, kt_, vals_, s_, eb_, dm_, p_, c_: int, dk_: int, dv_: int):
        """A block of a linear-attention op: its output, unscaled, `out_ = ((Q Kᵀ) ⊙ Γ) vals_ + (Q ⊙ e^b) S`
        (vals_: V, or the delta rule's pseudo-values U; qe_ and p_ are scratch)."""
        for t_ in range(c_):
            for i_ in T.vectorized(dk_):
                qe_[t_, i_] = qs_[t_, i_] * eb_[t_]
        gemm(p_, qs_, kt_, c_, dk_, c_, False)
        for t_ in range(c_):
            for c0_ in T.vectorized(c_):
                p_[t_, c0_] = p_[t_, c0_] * dm_[t_, c0_]
        gemm(out_, p_, vals_, c_, c_, dv_, False)
        gemm(out_, qe_, s_, c_, dk_, dv_, True)

    @T.macro
    def carry(s_, kt_, kw_, vals_, eb_, dm_, n_t_, c_: int, dk_: int, dv_: int):
        """The state after a block of n_t_ tokens: `S ← e^{b_last} S + (K ⊙ e^{suffix})ᵀ vals_` (kw_: scratch)."""
        for i_ in range(dk_):
            for c0_ in T.vectorized(c_):
                kw_[i_, c0_] = kt_[i_, c0_] * dm_[n_t_ - 1, c0_]
        for i_ in range(dk_):
            for j_ in T.vectorized(dv_):
                s_[i_, j_] = s_[i_, j_] * eb_[n_t_ - 1]
        gemm(s_, kw_, vals_, dk_, c_, dv_, True)

    return Macros(gemm, lane_reduce, decay_mask, attend, carry)


def add(a, b):
    return a + b


def fast_exp(x):
    """`exp(x)` of a float32 expression as plain arithmetic, so that it vectorises (`T.exp` becomes one
    libm call per lane): Cephes' expf, Cody-Waite range reduction and a degree-6 polynomial, within
    2 ulp of exp for x <= 88; it flushes to 0 below about -87.7 (where exp is subnormal), and -inf too."""
    from tvm import tirx

    def f(c):
        return tirx.const(c, "float32")

    x = tirx.min(tirx.max(x, f(-88.0)), f(88.0))
    n = tirx.floor(x * f(1.44269504088896341) + f(0.5))
    r = x - n * f(0.693359375) - n * f(-2.12194440e-4)
    p = f(1.9875691500e-4)
    for c in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
        p = p * r + f(c)
    two_n = tirx.reinterpret("float32", tirx.shift_left(tirx.Cast("int32", n) + 127, 23))
    return (p * r * r + r + f(1.0)) * two_n


def register(op: str, kind: str, build, *, variant: str = "", preference: int = 0, when=None) -> None:
    """Register `build(shapes, attrs, name)` as the TIR lowering of `op`'s `kind` (a generator named
    `<kind>[_<variant>]` whose PrimFunc is `<op>_<kind>[_<variant>]`)."""
    variant = f"{kind}_{variant}" if variant else kind

    def generate(shapes: list[tuple], attrs: dict):
        return build(shapes, attrs, f"{op}_{variant}")

    generate.__name__ = generate.__qualname__ = variant
    lowering("tir", op, kind, preference=preference, when=when)(generate)


# Last: the op modules register their kernels and use the helpers above.
from . import (  # noqa: E402, F401
    aaren, causal_conv1d, decay_linear_attention, gated_delta_rule, quantized_activations, quantized_matmul,
    sliding_window_attention)
