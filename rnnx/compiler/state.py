"""The whole state is the contract: every `present_X` a graph returns lives in its `past_X` input's buffer.

The runtimes (the Relax VM session, the RPC session, the static C step, the firmware) own the state buffers,
pass them to every call and read the new state from those same buffers, never from the outputs. An rnnx
op's kernel updates its state in place (`call_tir_inplace`, see `importer`), but state that the model's own
code computes (a conv buffer of the last K - 1 inputs, a position counter, a token-shift vector) comes out of
TVM's importer as a fresh tensor, which the runtimes would drop, stepping from a stale state.

`carry_state` runs right after TVM's ONNX import. For each graph output `present_X` with an input `past_X`:

- when the output already is the `past_X` parameter, or the in-place result of a `call_tir_inplace` on it
  (or a reshape of either: a view of the same buffer), it is left as it is;
- otherwise an in-place copy into `past_X` is emitted (`call_tir_inplace` of a copy PrimFunc with `past_X` as
  its in-place argument) and returned instead.

The copies go in a binding block of their own after the graph's dataflow block: every read of an old state
value happens before any copy overwrites it, and the dataflow passes (FuseOps, ...) work within one block,
so none fuses or moves a copy. A value that lives in another state buffer that is itself overwritten by a
copy (`present_b = past_a` with `present_a` new: a shift register) is first copied out of place. Those
copies, like the rest of the step's memory, are planned statically and lifted into the workspace
(`workspace`), so the step still allocates nothing.

What the runtimes cannot carry is refused naming the tensor: a `present_X` without its `past_X`, one whose
shape or dtype differs from its past's (a growing cache), a state input of dynamic shape. A present whose
shape is symbolic but provably its past's (TVM's slice of a `T`-long concat: `2^63 - 1 - max(T, 2^63 - 4)`)
is cast to it, checked at run time.
"""
import re

import onnx
import tvm
from tvm import relax, sym, te, tirx

from ..errors import RnnxError

PAST, PRESENT = "past_", "present_"
_CALL_TIR_INPLACE = tvm.ir.Op.get("relax.call_tir_inplace")
_RESHAPE = tvm.ir.Op.get("relax.reshape")  # lowered to a view of its input's buffer
_MAX_EXTENT = 1 << 48  # bound of a symbolic length (T) when comparing shapes: no buffer is larger


def carry_state(mod: tvm.IRModule, model: onnx.ModelProto) -> tvm.IRModule:
    """`mod` (TVM's import of `model`) with every `present_*` output aliasing its `past_*` input's buffer."""
    func = mod["main"]
    kind = next((p.value for p in model.metadata_props if p.key == "rnnx_graph"), None)  # set by rnnx export
    graph = f"the {kind} graph" if kind else "the graph"
    params = {p.name: p for p in func.params}
    bindings = {b.var: b.value for block in func.body.blocks for b in block.bindings}
    fields = _returned_fields(func.body.body, bindings)
    outputs = [o.name for o in model.graph.output]
    if len(fields) != len(outputs):
        raise RuntimeError(f"bug: {graph} has {len(outputs)} outputs, but TVM's import returns {len(fields)}")
    analyzer = sym.Analyzer()
    for var in relax.analysis.defined_symbolic_vars(func):
        analyzer.bind(var, tvm.ir.Range(tirx.IntImm(var.ty.dtype, 0), tirx.IntImm(var.ty.dtype, _MAX_EXTENT)))

    pending = {}  # output position -> the past parameter its value is copied into
    for i, name in enumerate(outputs):
        if name.startswith(PRESENT):
            past = params.get(PAST + name.removeprefix(PRESENT))
            _check_carriable(graph, name, past, fields[i].ty, analyzer)
            if not _buffer_of(fields[i], bindings).same_as(past):
                pending[i] = past
    return _with_copies(mod, fields, pending, bindings) if pending else mod


def _check_carriable(graph: str, name: str, past: relax.Var | None, ty, analyzer: sym.Analyzer) -> None:
    where = f"{graph}'s state"
    if past is None:
        raise RnnxError(f"{where} output {name} has no input {PAST}{name.removeprefix(PRESENT)}: every state "
                        "tensor must go in as past_* and come out as present_*")
    if not _static(past.ty):
        raise RnnxError(f"{where} input {past.name} has the dynamic shape {_spell(past.ty)}: the runtimes carry a "
                        "state of fixed size")
    if not (isinstance(ty, relax.TensorType) and ty.dtype == past.ty.dtype and ty.shape is not None
            and len(ty.shape.values) == len(past.ty.shape.values)
            and all(analyzer.can_prove_equal(d, p) for d, p in zip(ty.shape.values, past.ty.shape.values))):
        raise RnnxError(f"{where} output {name} is {_spell(ty)}, but its input {past.name} is {_spell(past.ty)}: a "
                        "state tensor keeps its shape and dtype from token to token (a cache that grows cannot "
                        "be carried; keep a fixed-size window)")


def _static(ty) -> bool:
    return isinstance(ty, relax.TensorType) and isinstance(ty.shape, relax.ShapeExpr) \
        and all(isinstance(d, tirx.IntImm) for d in ty.shape.values)


def _spell(ty) -> str:
    if not isinstance(ty, relax.TensorType):
        return type(ty).__name__
    if ty.shape is None:
        return f"{ty.dtype}[?]"
    # TVMScript spells an int64 literal T.int64(2): "2 + T" reads better in a message
    dims = (re.sub(r"T\.int64\((-?\d+)\)", r"\1", str(d)) for d in ty.shape.values)
    return f"{ty.dtype}[{', '.join(dims)}]"


def _returned_fields(body: relax.Expr, bindings: dict) -> list[relax.Expr]:
    value = bindings.get(body, body) if isinstance(body, relax.Var) else body
    return list(value.fields) if isinstance(value, relax.Tuple) else [body]


def _buffer_of(value: relax.Expr, bindings: dict) -> relax.Expr:
    """The expression whose buffer `value` lives in: through variable aliases, tuple items, reshapes and the
    in-place outputs of `call_tir_inplace`, down to a parameter (or the first value with a buffer of its own)."""
    while True:
        bound = bindings.get(value) if isinstance(value, relax.Var) else None
        if isinstance(bound, relax.Var):
            value = bound
        elif isinstance(bound, relax.TupleGetItem):
            whole = bound.tuple_value
            whole = bindings.get(whole, whole) if isinstance(whole, relax.Var) else whole
            if isinstance(whole, relax.Tuple):
                value = whole.fields[bound.index]
            elif (arg := _inplace_argument(whole, bound.index)) is not None:
                value = arg
            else:
                return value
        elif isinstance(bound, relax.Call) and not isinstance(bound.ty, relax.TupleType) \
                and (arg := _inplace_argument(bound, 0)) is not None:
            value = arg
        elif isinstance(bound, relax.Call) and bound.op.same_as(_RESHAPE):
            value = bound.args[0]
        else:
            return value


def _inplace_argument(call, output: int) -> relax.Expr | None:
    """The argument whose buffer `call`'s output `output` is, when `call` is a `call_tir_inplace` writing it."""
    if not (isinstance(call, relax.Call) and call.op.same_as(_CALL_TIR_INPLACE)):
        return None
    index = int(call.attrs.inplace_indices[output])
    return call.args[1].fields[index] if index >= 0 else None


def _with_copies(mod: tvm.IRModule, fields: list, pending: dict, bindings: dict) -> tvm.IRModule:
    """`mod` whose `main` ends in a block of copies into the `pending` outputs' past buffers."""
    func = mod["main"]
    bb = relax.BlockBuilder(mod)
    kernels = {}

    def copy_kernel(ty: relax.TensorType) -> tvm.ir.GlobalVar:
        shape = [int(d) for d in ty.shape.values]
        name = f"rnnx_copy_state_{'x'.join(map(str, shape)) or 'scalar'}_{ty.dtype}"
        if name not in kernels:
            src = te.placeholder(shape, ty.dtype, "src")
            dst = te.compute(shape, lambda *i: src(*i), "dst")
            kernels[name] = bb.add_func(te.create_prim_func([src, dst]).with_attr("global_symbol", name), name)
        return kernels[name]

    copies = []

    def bind(name: str, value: relax.Expr, cast=None) -> relax.Var:
        value = bb.normalize(value)
        var = relax.Var(name, cast or value.ty)
        copies.append(relax.MatchCast(var, value, cast) if cast else relax.VarBinding(var, value))
        return var

    blocks, visible = _exported(list(func.body.blocks), func.body.body, fields)
    sources = dict(visible)
    written = list(pending.values())
    for i, past in pending.items():
        name = past.name.removeprefix(PAST)
        if not _static(visible[i].ty):  # provably the past's shape (checked above): say so, checked at run time
            sources[i] = bind(f"{PRESENT}{name}_sized", sources[i], past.ty)
        if any(_buffer_of(fields[i], bindings).same_as(w) for w in written):
            # lives in a buffer that a copy below overwrites (maybe before this one reads it): read it out first
            sources[i] = bind(f"{PRESENT}{name}_next", relax.call_tir(copy_kernel(past.ty), relax.Tuple([sources[i]]),
                                                                      out_ty=past.ty))
    carried = list(visible.values())
    for i, past in pending.items():
        carried[i] = bind(PRESENT + past.name.removeprefix(PAST), relax.call_tir_inplace(
            copy_kernel(past.ty), relax.Tuple([sources[i], past]), inplace_indices=[1], out_ty=past.ty))
    result = bind("carried", relax.Tuple(carried))
    body = relax.SeqExpr([*blocks, relax.BindingBlock(copies)], result)
    mod = bb.get()
    mod["main"] = relax.Function(func.params, body, result.ty, func.is_pure, func.attrs)
    return relax.transform.Normalize()(mod)  # types what was built here (the body, the function)


def _exported(blocks: list, ret: relax.Expr, fields: list) -> tuple[list, dict]:
    """The blocks without the binding of the returned tuple `ret`, its block outputting each of the tuple's
    `fields` that is local to it (a dataflow block's values are not visible after it); by position, the
    fields as seen after the blocks."""
    for n, block in enumerate(blocks):
        if not any(b.var.same_as(ret) and isinstance(b.value, relax.Tuple) for b in block.bindings):
            continue
        kept, exported = [b for b in block.bindings if not b.var.same_as(ret)], {}
        for f in fields:
            if isinstance(f, relax.DataflowVar) and f not in exported:
                exported[f] = relax.Var(f.name + "_out", f.ty)
                kept.append(relax.VarBinding(exported[f], f))
        blocks[n] = type(block)(kept)
        return blocks, {i: exported.get(f, f) for i, f in enumerate(fields)}
    return blocks, dict(enumerate(fields))
