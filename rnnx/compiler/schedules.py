"""CPU schedules for the dense PrimFuncs of a legalized, fused Relax module.

TVM's CPU pipeline applies no schedules: a legalized matmul runs as a plain loop nest at ~1 GFLOP/s.
`schedule_dense(target)` finds every PrimFunc whose first block is `C[.., m, n] += A[.., m, k] * W[k, n]`
(ONNX MatMul against a [K, N] weight), possibly followed by injective epilogue blocks that FuseOps fused
in (add, sigmoid, SiLU, ...), and schedules it:

* matrix-vector (M = 1, the step graph): N in tiles of up to 4 vector registers, K the loop outside the
  vector lanes, the tile's accumulators in registers, the epilogue applied per tile;
* matrix-matrix (M > 1 or symbolic, the prefill graph): an mr x nr register tile (mr rows unrolled, nr
  columns vectorised) with K inside it, row blocks sharing each weight panel, N tiles in parallel.

It also packs constant weights for the tile: W[K, N] becomes Wp[N / tile, K, tile] at compile time, so a
tile's weights are one contiguous stream. Read from a [K, N] weight, a tile is K short rows N * 4 bytes
apart, which (N a power of two) fall into a few cache sets and evict each other: packed, the prefill
products with 4 MB weights run 2.3x faster (59 -> 136 GFLOP/s on one core); the step's matrix-vector
products, bound by bandwidth either way, gain 3-8%.

Place it after `relax.backend.cpu_generic.pipeline.legalize_passes(target)` (it schedules FuseTIR's fused
functions) and before `dataflow_lower_passes(target)`.
"""
import logging

import tvm
from tvm import relax, s_tir, tirx
from tvm.ir import TensorLoad  # what a TIR buffer load is in 0.27
from tvm.target.codegen import llvm_cpu_has_features

SPATIAL, REDUCE = 0, 2  # IterVar.iter_type
PARALLEL_MIN_MACS = 1 << 16  # a matrix-vector kernel smaller than this runs on one core (see schedule_dense)
_log = logging.getLogger(__name__)


def vector_lanes(target: tvm.target.Target) -> int:
    """fp32 lanes of the widest vector register the target's mcpu/mattr enable: AVX-512 16, AVX 8, SSE, NEON,
    RVV (VLEN >= 128) and Helium 4; 1 on scalar cores (Cortex-M4/M7, rv64gc), where a vector loop would
    only be unrolled."""
    if target.kind.name == "llvm":
        for feature, lanes in (("avx512f", 16), ("avx", 8), ("sse2", 4), ("neon", 4), ("v", 4), ("mve.fp", 4)):
            if llvm_cpu_has_features([feature], target):
                return lanes
    return 1


def schedule_dense(target: tvm.target.Target, pack_weights: bool = True) -> tvm.transform.Pass:
    """Module pass scheduling every dense PrimFunc not yet scheduled; other functions are left as they are.

    pack_weights: pack the weights bound to constants (rnnx bakes them in). A weight passed as a function
    input (num_input) would be repacked at every call: build such modules with pack_weights=False.

    Every kernel splits its N tiles over the cores, matrix-vector ones too from PARALLEL_MIN_MACS
    multiply-adds: TVM's pool splits them the same way at every call, so each core keeps its share of a
    layer's weights in its own L2 from one step to the next (ref-tiny's 1.8 MB of weights fit the two
    cores' L2 halves, not one), and a warm pool's workers spin, so a launch costs about 1 us (ref-tiny
    step, 2 cores: 30 us with every matrix-vector product split, 90 us with none). Below that size
    (ref-tiny's 128 x 128 and 128 x 256 layers) the launch costs more than the split saves."""
    lanes = vector_lanes(target)
    cores = int(target.attrs.get("num-cores", 1))

    @tvm.transform.module_pass(opt_level=0, name="rnnx.ScheduleDense")
    def schedule(mod: tvm.ir.IRModule, _ctx) -> tvm.ir.IRModule:
        updates = {}
        for gv, func in mod.functions_items():
            # plain-loop PrimFuncs (hand-written kernels) have no root block and nothing to schedule
            if (isinstance(func, tirx.PrimFunc) and isinstance(func.body, s_tir.SBlockRealize)
                    and "tirx.is_scheduled" not in func.attrs):
                scheduled = _schedule(func, lanes, cores)
                if scheduled is not None:
                    updates[gv] = scheduled
        mod = mod.clone()  # setting a function changes the module in place: leave the caller's as it was
        for gv, func in updates.items():
            mod[gv] = func
        return mod

    if not pack_weights:
        return schedule
    # AttachAttrLayoutFreeBuffers marks the PrimFunc params bound to constants; the schedule reads those
    # through a packing copy; _split_weight_packing moves the copy into a function of its own that
    # FoldConstant runs on the constant, and DeadCodeElimination drops it.
    return tvm.transform.Sequential([relax.transform.AttachAttrLayoutFreeBuffers(), schedule, _split_weight_packing,
                                     relax.transform.FoldConstant(), relax.transform.DeadCodeElimination()],
                                    name="rnnx.ScheduleDense")


@tvm.transform.module_pass(opt_level=0, name="rnnx.SplitWeightPacking")
def _split_weight_packing(mod: tvm.ir.IRModule, _ctx) -> tvm.ir.IRModule:
    """SplitLayoutRewritePreproc, with the hand-written kernels hidden from it: it fails on any PrimFunc without
    a block below the root, and they have none (plain loops, or a root block around them)."""
    plain = {gv: f for gv, f in mod.functions_items() if isinstance(f, tirx.PrimFunc) and _plain(f)}
    rest = tvm.IRModule({gv: f for gv, f in mod.functions_items() if gv not in plain}, mod.attrs, mod.global_infos)
    out = relax.transform.SplitLayoutRewritePreproc()(rest)
    for gv, f in plain.items():
        out[gv] = f
    return out


def _plain(func: tirx.PrimFunc) -> bool:
    if not isinstance(func.body, s_tir.SBlockRealize):
        return True
    sch = s_tir.Schedule(func)
    return not sch.get_child_blocks(sch.get_sblock(func.body.block.name_hint))


def _schedule(func: tirx.PrimFunc, lanes: int, cores: int) -> tirx.PrimFunc | None:
    sch = s_tir.Schedule(func)
    dense = _match_dense(sch)
    if dense is None:
        return None
    red, weight = dense
    free = [int(i) for i in func.attrs.get("layout_free_buffers", [])]
    if not any(func.params[i].same_as(weight) for i in free):
        weight = None  # not bound to a constant: keep its layout
    *rows, n, k = sch.get_loops(red)
    try:
        if all(isinstance(e, tirx.IntImm) and int(e) == 1 for e in (sch.get(r).extent for r in rows)):
            macs = int(sch.get(n).extent) * int(sch.get(k).extent)
            _schedule_matvec(sch, red, weight, lanes, cores > 1 and macs >= PARALLEL_MIN_MACS)
        else:
            _schedule_matmul(sch, red, weight, lanes, cores)
    except s_tir.ScheduleError as e:  # an epilogue the primitives refuse: leave the function as it was
        _log.warning("dense schedule not applied: %s", str(e).strip().splitlines()[-1])
        return None
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def _match_dense(sch: s_tir.Schedule):
    """(matmul block, weight buffer) if the function is an fp32 matmul against a static [K, N] weight
    followed by spatial blocks only, else None."""
    red, *epilogue = sch.get_child_blocks(sch.get_sblock("root")) or [None]
    if red is None or any(REDUCE in [iv.iter_type for iv in sch.get(b).iter_vars] for b in epilogue):
        return None
    block = sch.get(red)
    types = [iv.iter_type for iv in block.iter_vars]
    if len(types) < 3 or types[-1] != REDUCE or any(t != SPATIAL for t in types[:-1]):
        return None
    if len(sch.get_loops(red)) != len(types):  # one loop per iter var, as legalization writes them
        return None
    n, k = (iv.var for iv in block.iter_vars[-2:])
    store = block.body
    value = getattr(store, "value", None)
    if not (isinstance(store, tirx.BufferStore) and store.buffer.dtype == "float32"
            and isinstance(value, tirx.Add) and isinstance(value.b, tirx.Mul)):
        return None
    x, w = value.b.a, value.b.b
    if not (isinstance(x, TensorLoad) and isinstance(w, TensorLoad) and len(w.indices) == 2
            and w.indices[0].same_as(k) and w.indices[1].same_as(n) and x.indices[-1].same_as(k)):
        return None
    if not all(isinstance(sch.get(loop).extent, tirx.IntImm) for loop in sch.get_loops(red)[-2:]):
        return None  # the tiles are sized from N and K
    return red, w.source


def _pack_weight(sch, red, weight, tile: int) -> None:
    """Read W[k, n] as Wp[n // tile, k, n % tile] through a copy marked as a layout-rewrite preprocess
    (what SplitLayoutRewritePreproc moves out of the kernel)."""
    index = [r.source.same_as(weight) for r in sch.get(red).reads].index(True)
    copy = sch.cache_read(red, index, "global")
    sch.annotate(copy, "meta_schedule.layout_rewrite_preproc", True)
    sch.transform_layout(red, ("read", index), lambda k, n: (n // tile, k, n % tile))


def _pack_padded_weight(sch, red, weight, tile: int) -> None:
    """After `pad_einsum` padded N to a multiple of the tile: the weight's padding copy becomes its packing
    (the layout-rewrite preprocess FoldConstant runs at compile time). The zero columns cost a few
    multiply-adds, where a predicated tail over an unpacked [K, N] weight made Mamba-2's 3352-column in_proj
    2.3x slower per column in a step than a 3328-column one, and 58% of a prefill."""
    pad = next(b for b in sch.get_producers(red) if any(r.source.same_as(weight) for r in sch.get(b).reads))
    index = [r.source.same_as(sch.get(pad).writes[0].source) for r in sch.get(red).reads].index(True)
    sch.annotate(pad, "meta_schedule.layout_rewrite_preproc", True)
    sch.transform_layout(red, ("read", index), lambda k, n: (n // tile, k, n % tile))


def _output_tile(sch, red, at):
    """Compute the output tile under loop `at`: the matmul accumulates into a local tile (registers, once
    LLVM promotes it) and the last block after it, or a copy, writes it out; the blocks between (an
    epilogue chain such as sigmoid -> multiply) are inlined into that last one. Returns the writer."""
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    after = blocks[[sch.get(b).same_as(sch.get(red)) for b in blocks].index(True) + 1:]
    for block in after[:-1]:
        sch.compute_inline(block)
    if after:
        out = after[-1]
        sch.set_scope(red, 0, "local")
    else:
        out = sch.cache_write(red, 0, "local")
    sch.reverse_compute_at(out, at)
    return out


def _finish(sch, red, out, inner, k) -> None:
    """Vectorise the tile's columns in the update, the write-out and the init. vectorize() must come
    before decompose_reduction: afterwards the update block no longer counts as a reduction block and
    vectorize/parallel refuse it ("does not have compact dataflow")."""
    sch.vectorize(inner)
    sch.vectorize(sch.get_loops(out)[-1])
    init = sch.decompose_reduction(red, k)
    sch.vectorize(sch.get_loops(init)[-1])


def _schedule_matvec(sch, red, weight, lanes: int, parallel: bool) -> None:
    *_, n, k = sch.get_loops(red)
    n_ext = int(sch.get(n).extent)
    # up to 4 vector accumulators per tile; an N no vector divides keeps 4 and a predicated tail
    tile = next((t * lanes for t in (4, 3, 2, 1) if n_ext % (t * lanes) == 0), 4 * lanes)
    if weight is not None and n_ext % tile:
        sch.pad_einsum(red, [1] * (len(sch.get(red).iter_vars) - 2) + [tile, 1])
        _pack_padded_weight(sch, red, weight, tile)
    elif weight is not None:
        _pack_weight(sch, red, weight, tile)
    no, ni = sch.split(n, [None, tile])
    sch.reorder(no, k, ni)
    out = _output_tile(sch, red, no)
    if parallel:
        sch.parallel(no)
    _finish(sch, red, out, ni, k)


def _schedule_matmul(sch, red, weight, lanes: int, cores: int) -> None:
    # mr rows x 2 vectors of accumulators, plus 2 weight vectors and a broadcast, fit 32 vector registers
    # (AVX-512, NEON) with mr = 8 and 16 (AVX2, SSE) with mr = 6. An N that 2 vectors do not divide but 3
    # do (ref-small-gdn's 2064 projection columns) takes 3, with mr = 8 and 4: a tile that divides N
    # packs its weights and needs no predicated tail. Row blocks of mc rows reuse each K x nr weight panel
    # from L2; mc is as large as keeps the block's rows of x within 512 KB of L2.
    *rows, n, k = sch.get_loops(red)
    vectors = next((v for v in (2, 3) if int(sch.get(n).extent) % (v * lanes) == 0), 2)
    mr, nr = (8 if lanes == 16 else 6 if vectors == 2 else 4), vectors * lanes
    mc = mr * max(1, (1 << 19) // (4 * int(sch.get(k).extent) * mr))
    # Pad the rows to a multiple of mr (x is copied into a zero-padded block; result rows past T are
    # dropped) so that the accumulating block has no `row < T` predicate: conditional stores keep LLVM
    # from holding the accumulators in registers across the K loop (3x slower).
    last = sch.get(rows[-1]).extent
    padded = not (isinstance(last, tirx.IntImm) and int(last) % mr == 0)
    pad_n = weight is not None and int(sch.get(n).extent) % nr != 0
    if padded or pad_n:
        sch.pad_einsum(red, [1] * (len(rows) - 1) + [mr if padded else 1, nr if pad_n else 1, 1])
        x_pad = next((b for b in sch.get_producers(red)
                      if not any(r.source.same_as(weight) for r in sch.get(b).reads)), None)
    if pad_n:
        _pack_padded_weight(sch, red, weight, nr)
    elif weight is not None:
        _pack_weight(sch, red, weight, nr)
    *rows, n, k = sch.get_loops(red)
    mo, mm, mi = sch.split(sch.fuse(*rows) if len(rows) > 1 else rows[0], [None, mc // mr, mr])
    no, ni = sch.split(n, [None, nr])
    sch.reorder(mo, no, mm, k, mi, ni)
    out = _output_tile(sch, red, mm)
    if padded:
        sch.compute_at(x_pad, mo)
    if cores > 1:
        sch.parallel(no)  # N tiles, not row blocks: a prompt shorter than 2 * mc still uses every core
    sch.unroll(mi)
    _finish(sch, red, out, ni, k)
