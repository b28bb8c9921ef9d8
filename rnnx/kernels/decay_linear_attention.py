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

from . import fast_exp, linear_dims, macros, register, tile

F32 = "float32"


def _recurrent(shapes, attrs, name):
    from tvm.script import tirx as T

    B, L, H, Dk, Dv, dshape, dstrides = linear_dims(shapes, "decay")
    scale = float(attrs["scale"])
    vb = tile(Dv, (64, 32, 16, 8, 4, 2))  # a row tile of the state held in registers

    @T.prim_func
    def kernel(q: T.Buffer((B, L, H, Dk), F32), k: T.Buffer((B, L, H, Dk), F32),
               v: T.Buffer((B, L, H, Dv), F32), decay: T.Buffer(dshape, F32),
               state: T.Buffer((B, H, Dk, Dv), F32), o: T.Buffer((B, L, H, Dv), F32)):
        T.func_attr({"global_symbol": name, "tir.noalias": True})
        g = T.decl_buffer((B, L, H), F32, data=decay.data, strides=dstrides)
        acc = T.alloc_buffer((vb,), F32)  # small, "global" scope: a stack array LLVM keeps in registers
        a = T.alloc_buffer((1,), F32)      # exp(g): a scalar read inside vectorised loops
        for b, h in T.grid(B, H):
            for t in range(L):
                a[0] = T.exp(g[b, t, h])
                for j0 in range(Dv // vb):
                    for j in T.vectorized(vb):
                        acc[j] = T.float32(0)
                    for i in range(Dk):
                        for j in T.vectorized(vb):
                            # no scalar let inside T.vectorized (miscompiles in 0.27): store, re-read
                            state[b, h, i, j0 * vb + j] = (a[0] * state[b, h, i, j0 * vb + j]
                                                           + k[b, t, h, i] * v[b, t, h, j0 * vb + j])
                            acc[j] = acc[j] + q[b, t, h, i] * state[b, h, i, j0 * vb + j]
                    for j in T.vectorized(vb):
                        o[b, t, h, j0 * vb + j] = acc[j] * T.float32(scale)

    return kernel


def _chunked(shapes, attrs, name):
    from tvm.script import tirx as T

    gemm, _ = macros()
    B, L, H, Dk, Dv, dshape, dstrides = linear_dims(shapes, "decay")
    scale, C = float(attrs["scale"]), int(attrs.get("chunk_size", 64))

    @T.prim_func
    def kernel(q: T.Buffer((B, L, H, Dk), F32), k: T.Buffer((B, L, H, Dk), F32),
               v: T.Buffer((B, L, H, Dv), F32), decay: T.Buffer(dshape, F32),
               state: T.Buffer((B, H, Dk, Dv), F32), o: T.Buffer((B, L, H, Dv), F32)):
        T.func_attr({"global_symbol": name, "tir.noalias": True})
        g = T.decl_buffer((B, L, H), F32, data=decay.data, strides=dstrides)
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
            s = T.decl_buffer((Dk, Dv), F32, data=state.data, elem_offset=(b * H + h) * (Dk * Dv))
            for n in range((length + (C - 1)) // C):
                n_t = T.min(C, length - n * C)  # tokens in this block
                for t in range(C):
                    if t < n_t:
                        gb[t] = g[b, n * C + t, h]
                        for i in range(Dk):
                            qs[t, i] = q[b, n * C + t, h, i]
                            kt[i, t] = k[b, n * C + t, h, i]
                        for j in range(Dv):
                            vs[t, j] = v[b, n * C + t, h, j]
                    else:
                        gb[t] = T.float32(0)
                        for i in range(Dk):
                            qs[t, i] = T.float32(0)
                            kt[i, t] = T.float32(0)
                        for j in range(Dv):
                            vs[t, j] = T.float32(0)
                run[0] = T.float32(0)
                for t in range(C):
                    run[0] = run[0] + gb[t]
                    eb[t] = run[0]
                for c in range(C):  # column c of log Γ: each segment sum accumulated directly
                    run[0] = T.float32(0)
                    for t in range(C):
                        if t < c:
                            dm[t, c] = T.float32("-inf")
                        else:
                            if t > c:
                                run[0] = run[0] + gb[t]
                            dm[t, c] = run[0]
                for t in T.vectorized(C):
                    eb[t] = fast_exp(eb[t])
                for t in range(C):
                    for c in T.vectorized(C):
                        dm[t, c] = fast_exp(dm[t, c])
                for t in range(C):
                    for i in T.vectorized(Dk):
                        qe[t, i] = qs[t, i] * eb[t]
                gemm(p, qs, kt, C, Dk, C, False)
                for t in range(C):
                    for c in T.vectorized(C):
                        p[t, c] = p[t, c] * dm[t, c]
                gemm(ob, p, vs, C, C, Dv, False)
                gemm(ob, qe, s, C, Dk, Dv, True)
                for t in range(n_t):
                    for j in T.vectorized(Dv):
                        o[b, n * C + t, h, j] = ob[t, j] * T.float32(scale)
                for i in range(Dk):
                    for c in T.vectorized(C):
                        kw[i, c] = kt[i, c] * dm[n_t - 1, c]
                for i in range(Dk):
                    for j in T.vectorized(Dv):
                        s[i, j] = s[i, j] * eb[n_t - 1]
                gemm(s, kw, vs, Dk, C, Dv, True)

    return kernel


register("decay_linear_attention", "step", _recurrent)
register("decay_linear_attention", "sequence", _chunked)
# the second prefill, preferred below the chunked one: it runs the heads one after another where the
# chunked kernel runs them in parallel, so which is faster depends on the target and its threads
register("decay_linear_attention", "sequence", _recurrent, variant="recurrent", preference=-1)
