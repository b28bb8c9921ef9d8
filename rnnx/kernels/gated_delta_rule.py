"""TIR kernels of gated_delta_rule: `S' = exp(g_t) S`, `S_t = S' + β_t k_t (v_t - S'ᵀ k_t)ᵀ`,
`o_t = scale · q_tᵀ S_t`.

Parameters `(q, k, v, g, beta, state, o)`; `g` is `(H,)` per head or `(B, T, H)` per token (chosen by its
rank), `beta` `(B, T, H)`, `state` `(B, H, Dk, Dv)` is updated in place.

- `step`: per head and per tile of Dv columns (the delta rule acts on each column of S on its own), one
  read pass for `Sᵀ k`, then one fused pass for the decay, the rank-1 update and the read-out.
- `sequence`: the chunked WY / UT form (as `ops/gated_delta_rule/chunk.py`): per block of `chunk_size`
  tokens, the pseudo-values `U` solve `(I + tril(diag(β) (K Kᵀ ⊙ Γ), -1)) U = diag(β) (V - e^b ⊙ K S)`
  by forward substitution, then `o = ((Q Kᵀ) ⊙ Γ) U + (Q ⊙ e^b) S` and
  `S ← e^{b_last} S + (K ⊙ e^{suffix})ᵀ U`; `Γ[t, s] = exp(g_{s+1} + ... + g_t)` is summed directly
  (then exponentiated by the vectorised `fast_exp`).
  Blocks are zero-padded to `chunk_size` (β = 0 there, so padded rows of U are 0).
- `sequence_recurrent` (chosen on CPUs): the step's loop over a symbolic T, the heads in parallel; the faster
  prefill (about 1.9x at H=8, D=64, C=64): per token it does 3 (Sᵀk, update, read-out) multiply-adds per state
  element on a head's state held in L1, while the chunked form adds the C x C intra-block products
  and its matrix products (unscheduled, register-blocked only) run below peak.
"""
from __future__ import annotations

from . import linear_dims, macros, register, tile

F32 = "float32"


def _kernel(body):
    """The generator `(shapes, attrs, name) -> PrimFunc` of the kernel whose loops are the macro
    `body(shapes, attrs)` returns: the one signature `(q, k, v, g, beta, state, o)` of the step and both
    prefills, the decay viewed as `(B, T, H)` (zero strides broadcast a per-head one)."""
    def build(shapes, attrs, name):
        from tvm.script import tirx as T

        body_ = body(shapes, attrs)
        B, L, H, Dk, Dv, gshape, gstrides = linear_dims(shapes, "g")

        @T.prim_func
        def kernel(q: T.Buffer((B, L, H, Dk), F32), k: T.Buffer((B, L, H, Dk), F32),
                   v: T.Buffer((B, L, H, Dv), F32), g: T.Buffer(gshape, F32), beta: T.Buffer((B, L, H), F32),
                   state: T.Buffer((B, H, Dk, Dv), F32), o: T.Buffer((B, L, H, Dv), F32)):
            T.func_attr({"global_symbol": name, "tir.noalias": True})
            gv = T.decl_buffer((B, L, H), F32, data=g.data, strides=gstrides)
            body_(q, k, v, gv, beta, state, o)

        return kernel

    return build


def _recurrent_body(shapes, attrs):
    from tvm.script import tirx as T

    B, L, H, Dk, Dv, _, _ = linear_dims(shapes, "g")
    scale = float(attrs["scale"])
    vb = tile(Dv, (64, 32, 16, 8, 4, 2))  # columns of the state held in registers

    heads = T.serial if isinstance(L, int) else T.parallel  # a prefill's heads in parallel, a step's on one core

    @T.macro
    def body(q_, k_, v_, gv_, beta_, state_, o_):
        for b in range(B):
            for h in heads(H):
                sk = T.alloc_buffer((vb,), F32)   # Sᵀ k, then the update u = β (v - e^g Sᵀ k)
                acc = T.alloc_buffer((vb,), F32)  # q_tᵀ S_t
                a = T.alloc_buffer((2,), F32)     # e^g, β: scalars read inside vectorised loops
                for t in range(L):
                    a[0] = T.exp(gv_[b, t, h])
                    a[1] = beta_[b, t, h]
                    for j0 in range(Dv // vb):
                        for j in T.vectorized(vb):
                            sk[j] = T.float32(0)
                        for i in range(Dk):
                            for j in T.vectorized(vb):
                                sk[j] = sk[j] + k_[b, t, h, i] * state_[b, h, i, j0 * vb + j]
                        for j in T.vectorized(vb):
                            sk[j] = a[1] * (v_[b, t, h, j0 * vb + j] - a[0] * sk[j])
                            acc[j] = T.float32(0)
                        for i in range(Dk):
                            for j in T.vectorized(vb):
                                state_[b, h, i, j0 * vb + j] = (a[0] * state_[b, h, i, j0 * vb + j]
                                                                + k_[b, t, h, i] * sk[j])
                                acc[j] = acc[j] + q_[b, t, h, i] * state_[b, h, i, j0 * vb + j]
                        for j in T.vectorized(vb):
                            o_[b, t, h, j0 * vb + j] = acc[j] * T.float32(scale)

    return body


def _chunked_body(shapes, attrs):
    from tvm.script import tirx as T

    gemm, _, decay_mask, attend, carry = macros()
    B, L, H, Dk, Dv, _, _ = linear_dims(shapes, "g")
    scale, C = float(attrs["scale"]), int(attrs.get("chunk_size", 64))
    vb = tile(Dv, (64, 32, 16, 8, 4, 2))

    @T.macro
    def body(q_, k_, v_, gv_, beta_, state_, o_):
        # one block, zero-padded to C tokens
        qs = T.alloc_buffer((C, Dk), F32)       # Q
        qe = T.alloc_buffer((C, Dk), F32)       # Q ⊙ e^{b_t}
        ks = T.alloc_buffer((C, Dk), F32)       # K
        kt = T.alloc_buffer((Dk, C), F32)       # Kᵀ
        kw = T.alloc_buffer((Dk, C), F32)       # (K ⊙ e^{suffix})ᵀ
        vs = T.alloc_buffer((C, Dv), F32)       # V
        u = T.alloc_buffer((C, Dv), F32)        # K S, then the right-hand side, then the pseudo-values U
        gb = T.alloc_buffer((C,), F32)          # log decays (0 in the padding)
        bb = T.alloc_buffer((C,), F32)          # β (0 in the padding)
        eb = T.alloc_buffer((C,), F32)          # e^{b_t}, b_t = g_0 + ... + g_t
        dm = T.alloc_buffer((C, C), F32)        # Γ, 0 above the diagonal
        aw = T.alloc_buffer((C, C), F32)        # β_t (k_t · k_s) Γ[t, s]: the strictly lower part is used
        p = T.alloc_buffer((C, C), F32)         # (Q Kᵀ) ⊙ Γ
        ob = T.alloc_buffer((C, Dv), F32)       # the block's output
        run = T.alloc_buffer((1,), F32)
        acc = T.alloc_buffer((vb,), F32)
        length = T.Cast("int32", L)
        for b, h in T.grid(B, H):
            s = T.decl_buffer((Dk, Dv), F32, data=state_.data, elem_offset=(b * H + h) * (Dk * Dv))
            for n in range((length + (C - 1)) // C):
                n_t = T.min(C, length - n * C)  # tokens in this block
                for t in range(C):
                    if t < n_t:
                        gb[t] = gv_[b, n * C + t, h]
                        bb[t] = beta_[b, n * C + t, h]
                        for i in range(Dk):
                            qs[t, i] = q_[b, n * C + t, h, i]
                            ks[t, i] = k_[b, n * C + t, h, i]
                            kt[i, t] = k_[b, n * C + t, h, i]
                        for j in range(Dv):
                            vs[t, j] = v_[b, n * C + t, h, j]
                    else:
                        gb[t] = T.float32(0)
                        bb[t] = T.float32(0)
                        for i in range(Dk):
                            qs[t, i] = T.float32(0)
                            ks[t, i] = T.float32(0)
                            kt[i, t] = T.float32(0)
                        for j in range(Dv):
                            vs[t, j] = T.float32(0)
                decay_mask(gb, eb, dm, run, C)
                # right-hand side β (V - e^b ⊙ K S), then forward substitution for U
                gemm(u, ks, s, C, Dk, Dv, False)
                for t in range(C):
                    for j in T.vectorized(Dv):
                        u[t, j] = bb[t] * (vs[t, j] - eb[t] * u[t, j])
                gemm(aw, ks, kt, C, Dk, C, False)
                for t in range(C):
                    for c in T.vectorized(C):
                        aw[t, c] = bb[t] * aw[t, c] * dm[t, c]
                for t in range(n_t):
                    for j0 in range(Dv // vb):
                        for j in T.vectorized(vb):
                            acc[j] = u[t, j0 * vb + j]
                        for c in range(t):
                            for j in T.vectorized(vb):
                                acc[j] = acc[j] - aw[t, c] * u[c, j0 * vb + j]
                        for j in T.vectorized(vb):
                            u[t, j0 * vb + j] = acc[j]
                # output: intra-block attention on U plus the state before the block
                attend(ob, qs, qe, kt, u, s, eb, dm, p, C, Dk, Dv)
                for t in range(n_t):
                    for j in T.vectorized(Dv):
                        o_[b, n * C + t, h, j] = ob[t, j] * T.float32(scale)
                carry(s, kt, kw, u, eb, dm, n_t, C, Dk, Dv)

    return body


register("gated_delta_rule", "step", _kernel(_recurrent_body))
register("gated_delta_rule", "sequence", _kernel(_chunked_body))
# the token-recurrent prefill, preferred on CPUs: with the heads in parallel it is the faster one (1, 4096 tokens,
# 8 heads of 64, 2 cores, each kernel compiled alone: 20.4 ms against the chunked kernel's 25.3)
register("gated_delta_rule", "sequence", _kernel(_recurrent_body), variant="recurrent", preference=1)
