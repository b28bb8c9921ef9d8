"""TIR kernels of decay_linear_attention: `S_t = exp(g_t) S_{t-1} + k_t v_tᵀ`, `o_t = scale · q_tᵀ S_t`.

Parameters `(q, k, v, decay, state, o)`; `decay` is `(H,)` per head or `(B, T, H)` per token (chosen by
its rank), `state` `(B, H, Dk, Dv)` is updated in place.

- `step`: one fused pass over each head's state (decay, rank-1 update and the read-out together),
  vectorised over Dv.
- `sequence`: the chunked form (Lightning Attention-2 tiling, as `ops/decay_linear_attention/chunk.py`):
  per block of `chunk_size` tokens, `o = ((Q Kᵀ) ⊙ Γ) V + (Q ⊙ e^b) S` and
  `S ← e^{b_last} S + (K ⊙ e^{suffix})ᵀ V`, with the decay mask `Γ[t, s] = exp(g_{s+1} + ... + g_t)`
  summed directly (as `ops/blocks.segsum`) and exponentiated by the vectorised `fast_exp`; blocks are
  zero-padded to `chunk_size`, so the products are fixed-size register-blocked matrix products.
- `sequence_recurrent`: the step's loop run over a symbolic T. On a CPU it is the faster prefill
  (about 1.7x at H=8, D=64, C=64): per token it does 2 (update and read-out) multiply-adds per state
  element on a head's state held in L1, while the chunked form adds the C x C intra-block products
  and its matrix products (unscheduled, register-blocked only) run below peak.
"""
from __future__ import annotations

from . import linear_dims, macros, register, tile

F32 = "float32"


def _kernel(body):
    """The generator `(shapes, attrs, name) -> PrimFunc` of the kernel whose loops are the macro
    `body(shapes, attrs)` returns: the one signature `(q, k, v, decay, state, o)` of the step and both
    prefills, the decay viewed as `(B, T, H)` (zero strides broadcast a per-head one)."""
    def build(shapes, attrs, name):
        from tvm.script import tirx as T

        body_ = body(shapes, attrs)
        B, L, H, Dk, Dv, dshape, dstrides = linear_dims(shapes, "decay")

        @T.prim_func
        def kernel(q: T.Buffer((B, L, H, Dk), F32), k: T.Buffer((B, L, H, Dk), F32),
                   v: T.Buffer((B, L, H, Dv), F32), decay: T.Buffer(dshape, F32),
                   state: T.Buffer((B, H, Dk, Dv), F32), o: T.Buffer((B, L, H, Dv), F32)):
            T.func_attr({"global_symbol": name, "tir.noalias": True})
            g = T.decl_buffer((B, L, H), F32, data=decay.data, strides=dstrides)
            body_(q, k, v, g, state, o)

        return kernel

    return build


def _recurrent_body(shapes, attrs):
    from tvm.script import tirx as T

    B, L, H, Dk, Dv, _, _ = linear_dims(shapes, "decay")
    scale = float(attrs["scale"])
    vb = tile(Dv, (64, 32, 16, 8, 4, 2))  # a row tile of the state held in registers

    @T.macro
    def body(q_, k_, v_, g_, state_, o_):
        acc = T.alloc_buffer((vb,), F32)  # small, "global" scope: a stack array LLVM keeps in registers
        a = T.alloc_buffer((1,), F32)      # exp(g): a scalar read inside vectorised loops
        for b, h in T.grid(B, H):
            for t in range(L):
                a[0] = T.exp(g_[b, t, h])
                for j0 in range(Dv // vb):
                    for j in T.vectorized(vb):
                        acc[j] = T.float32(0)
                    for i in range(Dk):
                        for j in T.vectorized(vb):
                            # no scalar let inside T.vectorized (miscompiles in 0.27): store, re-read
                            state_[b, h, i, j0 * vb + j] = (a[0] * state_[b, h, i, j0 * vb + j]
                                                            + k_[b, t, h, i] * v_[b, t, h, j0 * vb + j])
                            acc[j] = acc[j] + q_[b, t, h, i] * state_[b, h, i, j0 * vb + j]
                    for j in T.vectorized(vb):
                        o_[b, t, h, j0 * vb + j] = acc[j] * T.float32(scale)

    return body


def _chunked_body(shapes, attrs):
    from tvm.script import tirx as T

    _, _, decay_mask, attend, carry = macros()
    B, L, H, Dk, Dv, _, _ = linear_dims(shapes, "decay")
    scale, C = float(attrs["scale"]), int(attrs.get("chunk_size", 64))

    @T.macro
    def body(q_, k_, v_, g_, state_, o_):
        length = T.Cast("int32", L)  # token indices in int32, like the loops over a block
        for bh in T.parallel(B * H):  # heads are independent: one per task, each with its own scratch
            b, h = bh // H, bh % H
            # one block, zero-padded to C tokens
            qs = T.alloc_buffer((C, Dk), F32)       # Q
            qe = T.alloc_buffer((C, Dk), F32)       # Q ⊙ e^{b_t}: reads the state before the block
            kt = T.alloc_buffer((Dk, C), F32)       # Kᵀ
            kw = T.alloc_buffer((Dk, C), F32)       # (K ⊙ e^{suffix})ᵀ: the block's state increment
            vs = T.alloc_buffer((C, Dv), F32)       # V
            gb = T.alloc_buffer((C,), F32)          # the block's log decays (0 in the padding)
            eb = T.alloc_buffer((C,), F32)          # e^{b_t}, b_t = g_0 + ... + g_t
            dm = T.alloc_buffer((C, C), F32)        # Γ[t, s] = exp(g_{s+1} + ... + g_t), 0 above the diagonal
            p = T.alloc_buffer((C, C), F32)         # (Q Kᵀ) ⊙ Γ
            ob = T.alloc_buffer((C, Dv), F32)       # the block's output
            run = T.alloc_buffer((1,), F32)
            s = T.decl_buffer((Dk, Dv), F32, data=state_.data, elem_offset=(b * H + h) * (Dk * Dv))
            for n in range((length + (C - 1)) // C):
                n_t = T.min(C, length - n * C)  # tokens in this block
                for t in range(C):
                    if t < n_t:
                        gb[t] = g_[b, n * C + t, h]
                        for i in range(Dk):
                            qs[t, i] = q_[b, n * C + t, h, i]
                            kt[i, t] = k_[b, n * C + t, h, i]
                        for j in range(Dv):
                            vs[t, j] = v_[b, n * C + t, h, j]
                    else:
                        gb[t] = T.float32(0)
                        for i in range(Dk):
                            qs[t, i] = T.float32(0)
                            kt[i, t] = T.float32(0)
                        for j in range(Dv):
                            vs[t, j] = T.float32(0)
                decay_mask(gb, eb, dm, run, C)
                attend(ob, qs, qe, kt, vs, s, eb, dm, p, C, Dk, Dv)
                for t in range(n_t):
                    for j in T.vectorized(Dv):
                        o_[b, n * C + t, h, j] = ob[t, j] * T.float32(scale)
                carry(s, kt, kw, vs, eb, dm, n_t, C, Dk, Dv)

    return body


register("decay_linear_attention", "step", _kernel(_recurrent_body))
register("decay_linear_attention", "sequence", _kernel(_chunked_body))
# the second prefill, preferred below the chunked one: it runs the heads one after another where the
# chunked kernel runs them in parallel, so which is faster depends on the target and its threads
register("decay_linear_attention", "sequence", _kernel(_recurrent_body), variant="recurrent", preference=-1)
