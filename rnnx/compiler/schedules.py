"""CPU schedules for the dense PrimFuncs of a legalized, fused Relax module.

TVM's CPU pipeline applies no schedules: a legalized matmul is a plain loop nest (~0.75 GFLOP/s). The pass
`schedule_dense(target)` finds every PrimFunc whose first block is `C[.., m, n] += A[.., m, k] * W[k, n]`
(the form ONNX MatMul with a [K, N] weight legalizes to), optionally followed by injective epilogue blocks
fused in by FuseOps (add, SiLU, ...), and schedules it:

* matrix-vector (M == 1, the step graph): N split into tiles of a few vector registers, K the loop
  outside the vector lanes, the tile's accumulators local (registers), the epilogue computed per tile;
* matrix-matrix (M static > 1 or symbolic, the prefill graph): an mr x nr register tile (mr rows unrolled,
  nr columns vectorised) with K inside it, tiles grouped in row blocks that run in parallel.

Put it after `relax.backend.cpu_generic.pipeline.legalize_passes(target)` (it needs FuseTIR's fused
functions) and before `dataflow_lower_passes(target)`.
"""
import logging

import tvm
from tvm import relax, s_tir, tirx
from tvm.ir import TensorLoad  # what tirx.BufferLoad(...) builds in 0.27
from tvm.target.codegen import llvm_cpu_has_features

SPATIAL, REDUCE = 0, 2  # IterVar.iter_type
_log = logging.getLogger(__name__)


def vector_lanes(target: tvm.target.Target) -> int:
    """fp32 lanes of the widest vector register the target's mcpu/mattr enable (AVX-512 16, AVX 8, else 4)."""
    if target.kind.name == "llvm":
        if llvm_cpu_has_features(["avx512f"], target):
            return 16
        if llvm_cpu_has_features(["avx"], target):
            return 8
    return 4  # SSE, NEON and anything else with 128-bit vectors


def schedule_dense(target: tvm.target.Target, pack_weights: bool = True, parallel_min_macs: int = 1 << 20) -> tvm.transform.Pass:
    """Module pass scheduling every dense PrimFunc not yet scheduled; other functions are left as they are.

    A matrix-vector kernel runs in parallel only from `parallel_min_macs` multiply-adds (K * N): waking the
    second thread costs a few microseconds, more than a small layer takes."""
    lanes = vector_lanes(target)
    cores = int(target.attrs.get("num-cores", 1))

    @tvm.transform.module_pass(opt_level=0, name="rnnx.ScheduleDense")
    def _pass(mod: tvm.ir.IRModule, _ctx) -> tvm.ir.IRModule:
        updates = {}
        for gv, func in mod.functions_items():
            # plain-loop PrimFuncs (hand-written kernels) have no root block: nothing to match
            if (isinstance(func, tirx.PrimFunc) and isinstance(func.body, s_tir.SBlockRealize)
                    and "tirx.is_scheduled" not in func.attrs):
                scheduled = _schedule(func, lanes, cores, parallel_min_macs)
                if scheduled is not None:
                    updates[gv] = scheduled
        for gv, func in updates.items():
            mod[gv] = func
        return mod

    if not pack_weights:
        return _pass
    return tvm.transform.Sequential([relax.transform.AttachAttrLayoutFreeBuffers(), _pass, _split_weight_packing,
                                     relax.transform.FoldConstant(), relax.transform.DeadCodeElimination()],
                                    name="rnnx.ScheduleDense")


@tvm.transform.module_pass(opt_level=0, name="rnnx.SplitWeightPacking")
def _split_weight_packing(mod: tvm.ir.IRModule, _ctx) -> tvm.ir.IRModule:
    """SplitLayoutRewritePreproc, hiding the plain-loop PrimFuncs it would reject (it wants a root block
    in every PrimFunc, and rnnx's hand-written kernels have none)."""
    plain = {gv: f for gv, f in mod.functions_items()
             if isinstance(f, tirx.PrimFunc) and not isinstance(f.body, s_tir.SBlockRealize)}
    rest = tvm.IRModule({gv: f for gv, f in mod.functions_items() if gv not in plain}, attrs=mod.attrs)
    out = relax.transform.SplitLayoutRewritePreproc()(rest)
    for gv, f in plain.items():
        out[gv] = f
    return out


def _schedule(func, lanes, cores, parallel_min_macs):
    sch = s_tir.Schedule(func)
    dense = _match_dense(sch)
    if dense is None:
        return None
    try:
        _schedule_dense(sch, func, *dense, lanes, cores, parallel_min_macs)
    except s_tir.ScheduleError as e:  # an epilogue the primitives refuse: leave the function as it was
        _log.warning("dense schedule not applied: %s", str(e).splitlines()[-1])
        return None
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def _schedule_dense(sch, func, red, weight, lanes, cores, parallel_min_macs):
    # A weight bound to a constant (AttachAttrLayoutFreeBuffers marks it) may be repacked at compile time
    free = [int(i) for i in func.attrs.get("layout_free_buffers", [])]
    packable = any(func.params[i].same_as(weight) for i in free)
    *rows, n, k = sch.get_loops(red)
    if all(isinstance(e, tirx.IntImm) and int(e) == 1 for e in (sch.get(r).extent for r in rows)):
        macs = int(sch.get(n).extent) * int(sch.get(k).extent)
        _schedule_matvec(sch, red, weight if packable else None, lanes, cores > 1 and macs >= parallel_min_macs)
    else:
        _schedule_matmul(sch, red, weight if packable else None, lanes, cores)


def _match_dense(sch):
    """(matmul block, weight buffer) if the function is an fp32 matmul against a [K, N] weight followed
    by spatial blocks only, else None."""
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    if not blocks:
        return None
    red, *epilogue = blocks
    if any(REDUCE in [iv.iter_type for iv in sch.get(b).iter_vars] for b in epilogue):
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
    if not (isinstance(x, TensorLoad) and isinstance(w, TensorLoad) and len(w.indices) == 2):
        return None
    if not (w.indices[0].same_as(k) and w.indices[1].same_as(n) and x.indices[-1].same_as(k)):
        return None
    for loop in sch.get_loops(red)[-2:]:  # N and K static: the tiles are sized from them
        if not isinstance(sch.get(loop).extent, tirx.IntImm):
            return None
    return red, w.source


def _output_tile(sch, red, at):
    """Compute the output tile under loop `at`: the matmul accumulates into a local tile (registers,
    once LLVM promotes it) and the last block after it, or a copy, writes it out; any blocks between
    (an epilogue chain like sigmoid -> multiply) are inlined into that last one. Returns the writer."""
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


def _pack_weight(sch, red, weight, tile):
    """Read W[k, n] as Wp[n // tile, k, n % tile]: each tile's K x tile panel becomes contiguous. The copy
    is marked as a layout-rewrite preprocess, which SplitLayoutRewritePreproc moves out of the kernel
    and FoldConstant then applies to the constant weight at compile time."""
    index = [r.source.same_as(weight) for r in sch.get(red).reads].index(True)
    copy = sch.cache_read(red, index, "global")
    sch.annotate(copy, "meta_schedule.layout_rewrite_preproc", True)
    sch.transform_layout(red, ("read", index), lambda k, n: (n // tile, k, n % tile))


def _schedule_matvec(sch, red, weight, lanes, parallel):
    *_, n, k = sch.get_loops(red)
    n_ext = int(sch.get(n).extent)
    tile = next((t * lanes for t in (4, 3, 2, 1) if n_ext % (t * lanes) == 0), 4 * lanes)
    if weight is not None and n_ext % tile == 0:
        _pack_weight(sch, red, weight, tile)
    no, ni = sch.split(n, [None, tile])
    sch.reorder(no, k, ni)
    out = _output_tile(sch, red, no)
    # parallel/vectorize before decompose_reduction: afterwards the update block is no longer a
    # reduction block and both refuse it ("does not have compact dataflow")
    if parallel:
        sch.parallel(no)
    sch.vectorize(ni)
    sch.vectorize(sch.get_loops(out)[-1])
    init = sch.decompose_reduction(red, k)
    sch.vectorize(sch.get_loops(init)[-1])


def _schedule_matmul(sch, red, weight, lanes, cores):
    # Register tile mr x nr: mr rows x 2 vectors of accumulators, plus 2 weight vectors and a broadcast,
    # fit 32 vector registers (AVX-512, NEON) with mr = 8 and 16 (AVX2, SSE) with mr = 6. Row blocks of
    # mc rows share each K x nr weight panel while it is in L2.
    mr, nr = (8 if lanes == 16 else 6), 2 * lanes
    mc = 8 * mr
    *rows, n, _ = sch.get_loops(red)
    # Pad the row dim to a multiple of mr (x is copied into a zero-padded block, result rows past T are
    # dropped) so the accumulating block carries no `row < T` predicate: conditional stores would keep
    # LLVM from holding the accumulators in registers across the K loop.
    last_rows = sch.get(rows[-1]).extent
    padded = not (isinstance(last_rows, tirx.IntImm) and int(last_rows) % mr == 0)
    if padded:
        sch.pad_einsum(red, [1] * (len(rows) - 1) + [mr, 1, 1])
        (x_pad,) = sch.get_producers(red)
    if weight is not None and int(sch.get(n).extent) % nr == 0:
        _pack_weight(sch, red, weight, nr)
    *rows, n, k = sch.get_loops(red)
    mo, mm, mi = sch.split(sch.fuse(*rows) if len(rows) > 1 else rows[0], [None, mc // mr, mr])
    no, ni = sch.split(n, [None, nr])
    sch.reorder(mo, no, mm, k, mi, ni)
    out = _output_tile(sch, red, mm)
    if padded:
        sch.compute_at(x_pad, mo)
    if cores > 1:
        # across N tiles, not row blocks: a short prompt (T < 2 * mc) still uses both cores
        sch.parallel(no)
    sch.unroll(mi)
    sch.vectorize(ni)
    sch.vectorize(sch.get_loops(out)[-1])
    init = sch.decompose_reduction(red, k)
    sch.vectorize(sch.get_loops(init)[-1])
