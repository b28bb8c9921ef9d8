"""TIR kernels of decay_linear_attention: `S_t = diag(exp(g_t)) S_{t-1} + k_t v_tᵀ`, `o_t = scale · q_tᵀ S_t`.

Parameters `(q, k, v, decay, state, o)`; `decay` is `(H,)` per head, `(B, T, H)` per token or
`(B, T, H, Dk)` per key dimension (told apart by its rank), `state` `(B, H, Dk, Dv)` is updated in place.

- `step`: one fused pass over each head's state (decay, rank-1 update and the read-out together),
  vectorised over Dv; a per-key decay first takes the token's Dk factors `exp(g_t)` in one vector pass.
- `sequence`: the chunked form (Lightning Attention-2 tiling, as `ops/decay_linear_attention/chunk.py`):
  per block of `chunk_size` tokens, `o = ((Q Kᵀ) ⊙ Γ) V + (Q ⊙ e^b) S` and
  `S ← e^{b_last} S + (K ⊙ e^{suffix})ᵀ V`, with the decay mask `Γ[t, s] = exp(g_{s+1} + ... + g_t)`
  summed directly (as `ops/blocks.segsum`) and exponentiated by the vectorised `fast_exp`; blocks are
  zero-padded to `chunk_size`, so the products are fixed-size register-blocked matrix products.
- `sequence_per_key`: the chunked form for a per-key decay (GLA's, `ops/decay_linear_attention/chunk.py`):
  the same blocks, carry and read-out of the state, with a factor per state row; the intra-block scores
  `Σ_i q_t[i] k_s[i] exp(g_{s+1}[i] + ... + g_t[i])` are summed per pair of tokens, vectorised over the
  keys, the segment's log decays summed directly from t down to s (every exponent <= 0: no overflow, no
  cancellation), where a scalar decay factors out into `(Q Kᵀ) ⊙ Γ`. Those C²/2 dot products of Dk
  terms cost it about 4x `sequence_recurrent`'s time on one core (H=4, D=64, C=64); it runs the heads in
  parallel. Off-diagonal sub-blocks as matrix products (fla's secondary chunking) would close the gap.
- `sequence_recurrent` (chosen on CPUs): the step's loop over a symbolic T, the heads in parallel, for every
  decay; the faster prefill (about 1.7x at H=8, D=64, C=64): per token it does 2 (update and read-out)
  multiply-adds per state element on a head's state held in L1, while the chunked form adds the C x C
  intra-block products and its matrix products (unscheduled, register-blocked only) run below peak.
"""
from __future__ import annotations

from . import add, fast_exp, linear_dims, macros, register, tile

F32 = "float32"


def _per_key(target, shapes) -> bool:
    """Whether the decay (4th input) is given per key dimension, `(B, T, H, Dk)`."""
    return len(shapes[3]) == 4


def _scalar(target, shapes) -> bool:
    """Whether the decay is one value per head `(H,)` or per token `(B, T, H)`."""
    return not _per_key(target, shapes)


def _kernel(body):
    """The generator `(shapes, attrs, name) -> PrimFunc` of the kernel whose loops are the macro
    `body(shapes, attrs)` returns: the one signature `(q, k, v, decay, state, o)` of the step and both
    prefills, the decay viewed as `(B, T, H)` (zero strides broadcast a per-head one) or `(B, T, H, Dk)`."""
    def build(shapes, attrs, name):
        from tvm.script import tirx as T

        body_ = body(shapes, attrs)
        B, L, H, Dk, Dv, dshape, dstrides = linear_dims(shapes, "decay", (1, 3, 4))

        @T.prim_func
        def kernel(q: T.Buffer((B, L, H, Dk), F32), k: T.Buffer((B, L, H, Dk), F32),
                   v: T.Buffer((B, L, H, Dv), F32), decay: T.Buffer(dshape, F32),
                   state: T.Buffer((B, H, Dk, Dv), F32), o: T.Buffer((B, L, H, Dv), F32)):
            T.func_attr({"global_symbol": name, "tir.noalias": True})
            g = T.decl_buffer((B, L, H, *dshape[3:]), F32, data=decay.data, strides=dstrides)
            body_(q, k, v, g, state, o)

        return kernel

    return build


def _recurrent_body(shapes, attrs):
    from tvm.script import tirx as T

    B, L, H, Dk, Dv, _, _ = linear_dims(shapes, "decay", (1, 3, 4))
    per_key = _per_key(None, shapes)
    scale = float(attrs["scale"])
    vb = tile(Dv, (64, 32, 16, 8, 4, 2))  # a row tile of the state held in registers
    row = (lambda i: i) if per_key else (lambda i: 0)  # the decay factor of state row i

    heads = T.serial if isinstance(L, int) else T.parallel  # a prefill's heads in parallel, a step's on one core

    @T.macro
    def body(q_, k_, v_, g_, state_, o_):
        for b in range(B):
            for h in heads(H):
                acc = T.alloc_buffer((vb,), F32)  # small, "global" scope: a stack array LLVM keeps in registers
                a = T.alloc_buffer((Dk if per_key else 1,), F32)  # exp(g), per row or one: read in vectorised loops
                for t in range(L):
                    if per_key:
                        for i in T.vectorized(Dk):
                            a[i] = fast_exp(g_[b, t, h, i])
                    else:
                        a[0] = T.exp(g_[b, t, h])
                    for j0 in range(Dv // vb):
                        for j in T.vectorized(vb):
                            acc[j] = T.float32(0)
                        for i in range(Dk):
                            for j in T.vectorized(vb):
                                # no scalar let inside T.vectorized (miscompiles in 0.27): store, re-read
                                state_[b, h, i, j0 * vb + j] = (a[row(i)] * state_[b, h, i, j0 * vb + j]
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


def _chunked_per_key_body(shapes, attrs):
    from tvm.script import tirx as T

    gemm, lane_reduce = macros().gemm, macros().lane_reduce
    B, L, H, Dk, Dv, _, _ = linear_dims(shapes, "decay", (4,))
    scale, C = float(attrs["scale"]), int(attrs.get("chunk_size", 64))
    lanes = tile(Dk)  # the sum over the keys in `lanes` partial sums

    @T.macro
    def body(q_, k_, v_, g_, state_, o_):
        length = T.Cast("int32", L)
        for bh in T.parallel(B * H):
            b, h = bh // H, bh % H
            # one block, zero-padded to C tokens; G_t = g_0 + ... + g_t per key, summed from the block start
            qs = T.alloc_buffer((C, Dk), F32)       # Q
            qe = T.alloc_buffer((C, Dk), F32)       # Q ⊙ e^{G_t}: reads the state before the block
            ks = T.alloc_buffer((C, Dk), F32)       # K
            ke = T.alloc_buffer((C, Dk), F32)       # K ⊙ e^{G_last - G_s}, the decay from s to the block end
            kw = T.alloc_buffer((Dk, C), F32)       # its transpose: the block's state increment is kw V
            vs = T.alloc_buffer((C, Dv), F32)       # V
            gb = T.alloc_buffer((C, Dk), F32)       # the block's log decays (0 in the padding)
            eb = T.alloc_buffer((C, Dk), F32)       # e^{G_t}
            p = T.alloc_buffer((C, C), F32)         # the intra-block scores
            ob = T.alloc_buffer((C, Dv), F32)       # the block's output
            run = T.alloc_buffer((Dk,), F32)        # a segment's log decays, per key
            part = T.alloc_buffer((lanes,), F32)
            s = T.decl_buffer((Dk, Dv), F32, data=state_.data, elem_offset=(b * H + h) * (Dk * Dv))
            for n in range((length + (C - 1)) // C):
                n_t = T.min(C, length - n * C)  # tokens in this block
                for t in range(C):
                    if t < n_t:
                        for i in range(Dk):
                            qs[t, i] = q_[b, n * C + t, h, i]
                            ks[t, i] = k_[b, n * C + t, h, i]
                            gb[t, i] = g_[b, n * C + t, h, i]
                        for j in range(Dv):
                            vs[t, j] = v_[b, n * C + t, h, j]
                    else:
                        for i in range(Dk):
                            qs[t, i] = T.float32(0)
                            ks[t, i] = T.float32(0)
                            gb[t, i] = T.float32(0)
                        for j in range(Dv):
                            vs[t, j] = T.float32(0)
                for i in T.vectorized(Dk):
                    run[i] = T.float32(0)
                for t in range(C):
                    for i in T.vectorized(Dk):
                        run[i] = run[i] + gb[t, i]
                        eb[t, i] = fast_exp(run[i])
                        qe[t, i] = qs[t, i] * eb[t, i]
                # p[t, s] = Σ_i q_t[i] k_s[i] exp(g_{s+1}[i] + ... + g_t[i]), s from t down: run grows by g_{s+1}
                for t in range(C):
                    for c0 in range(C):
                        p[t, c0] = T.float32(0)
                    for i in T.vectorized(Dk):
                        run[i] = T.float32(0)
                    for d in range(t + 1):
                        for li in T.vectorized(lanes):
                            part[li] = T.float32(0)
                        for i0 in range(Dk // lanes):
                            for li in T.vectorized(lanes):
                                part[li] = part[li] + qs[t, i0 * lanes + li] * ks[t - d, i0 * lanes + li] * fast_exp(
                                    run[i0 * lanes + li])
                        lane_reduce(part, lanes, add)
                        p[t, t - d] = part[0]
                        for i in T.vectorized(Dk):
                            run[i] = run[i] + gb[t - d, i]
                gemm(ob, p, vs, C, C, Dv, False)
                gemm(ob, qe, s, C, Dk, Dv, True)
                for t in range(n_t):
                    for j in T.vectorized(Dv):
                        o_[b, n * C + t, h, j] = ob[t, j] * T.float32(scale)
                # S ← diag(e^{G_last}) S + kw V; the padding's g = 0, so the block's end is its last token's
                for i in T.vectorized(Dk):
                    run[i] = T.float32(0)
                for d in range(C):  # s = C - 1 - d, from the end: run = g_{s+1} + ... + g_{C-1}
                    for i in T.vectorized(Dk):
                        ke[C - 1 - d, i] = ks[C - 1 - d, i] * fast_exp(run[i])
                        run[i] = run[i] + gb[C - 1 - d, i]
                for i, c0 in T.grid(Dk, C):
                    kw[i, c0] = ke[c0, i]
                for i in range(Dk):
                    for j in T.vectorized(Dv):
                        s[i, j] = s[i, j] * eb[C - 1, i]
                gemm(s, kw, vs, Dk, C, Dv, True)

    return body


register("decay_linear_attention", "step", _kernel(_recurrent_body))
register("decay_linear_attention", "sequence", _kernel(_chunked_body), when=_scalar)
register("decay_linear_attention", "sequence", _kernel(_chunked_per_key_body), variant="per_key", when=_per_key)
# the token-recurrent prefill, preferred on CPUs: with the heads in parallel it is the faster one (1, 4096 tokens,
# 8 heads of 64, 2 cores, each kernel compiled alone: 16.7 ms against the chunked kernel's 31.6)
register("decay_linear_attention", "sequence", _kernel(_recurrent_body), variant="recurrent", preference=1)
