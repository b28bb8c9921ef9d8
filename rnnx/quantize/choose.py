"""Which weights `rnnx quantize` quantizes, and which columns it keeps fp32 and why, from the export's record of
its weights (`rnnx.weights.Weight`) alone."""
import math
from dataclasses import dataclass

from ..errors import RnnxError
from ..weights import EMBEDDING, HEAD, RECURRENCE, KeptColumns, QuantizedWeight, Weight

FP32 = 32


@dataclass(frozen=True)
class Run:
    """Output columns `[start, stop)` of a weight, quantized (`reason` None) or kept fp32 for `reason`."""
    start: int
    stop: int
    reason: str | None = None


@dataclass(frozen=True)
class Plan:
    """One weight tensor (read by `weights`: two for a head tied to its embedding) and what becomes of it: its
    quantized columns' `bits` (8, 4; FP32 when kept whole) and its column runs in order. A tensor read by a
    Gather or through a Transpose is quantized whole, as int8 rows."""
    weights: list[Weight]
    bits: int
    runs: list[Run]

    @property
    def weight(self) -> Weight:
        return self.weights[0]

    @property
    def rows(self) -> bool:
        """Quantized as int8 rows of the stored tensor (a table, or a head behind a Transpose), not per column."""
        return self.weight.op == "Gather" or self.weight.transposed

    def initializers(self, graph: str) -> list[str]:
        return self.weight.initializers.get(graph, [])

    def record(self, group: int) -> QuantizedWeight:
        """What the manifest says of it, with its bytes before and after (values, scales, kept columns)."""
        K, N = self.weight.shape
        after = 0
        for run in self.runs:
            size = K * (run.stop - run.start) if not self.rows else K * N
            if run.reason is not None:
                after += 4 * size
            elif self.rows:
                after += size + 4 * K  # a scale per row
            else:
                scales = run.stop - run.start if self.bits == 8 else K // group * (run.stop - run.start)
                after += math.ceil(size * self.bits / 8) + 4 * scales
        kept = [KeptColumns(r.start, r.stop, r.reason) for r in self.runs if r.reason is not None]
        return QuantizedWeight([w.module for w in self.weights], list(self.weight.shape), self.bits, kept,
                               4 * K * N, after)


def plan(weights: list[Weight], fmt: str, group: int, head: bool, embedding: bool) -> list[Plan]:
    """A plan per weight tensor of the export; a group that does not divide a quantized weight's K is the
    user's mistake, naming the weight."""
    tensors: dict[tuple, list[Weight]] = {}
    for w in weights:  # modules reading the same initializers read one tensor (a tied head and embedding)
        tensors.setdefault(tuple(sorted((k, tuple(v)) for k, v in w.initializers.items())), []).append(w)
    plans = [_plan(ws, fmt, head, embedding) for ws in tensors.values()]
    for p in plans:
        K = p.weight.shape[0]
        if p.bits == 4 and K % group:
            raise RnnxError(f"--group {group} does not divide K = {K} of {p.weight.module}'s weight "
                            f"{p.weight.shape}: int4 blocks run along K; give a --group that divides it")
    return plans


def _plan(weights: list[Weight], fmt: str, head: bool, embedding: bool) -> Plan:
    w = weights[0]
    whole = w.outputs if w.op == "MatMul" else w.shape[1]

    def kept(reason: str) -> Plan:
        return Plan(weights, FP32, [Run(0, whole, reason)])

    kinds = {x.kind for x in weights}
    if len(weights) > 1:
        if kinds != {HEAD, EMBEDDING}:
            return kept(f"read by {len(weights)} modules ({', '.join(x.module for x in weights)})")
        if not (head and embedding):
            return kept("the head tied to the embedding: quantized with both --head and --embedding")
        return Plan(weights, 8, [Run(0, whole)])
    # the input map is int8 whatever the format: its error reaches every layer, and ONNX's Gather takes no int4
    if w.kind == EMBEDDING:
        return Plan(weights, 8, [Run(0, whole)]) if embedding else kept("the embedding: fp32 without --embedding")
    if w.kind == HEAD and not head:
        return kept("the head: fp32 without --head")
    if w.transposed and any(c.role == RECURRENCE for c in w.columns):  # rows of the stored tensor: not split
        return kept("drives the recurrence, behind a Transpose")
    bits = 8 if fmt == "int8" or w.transposed else 4
    spans = []  # [start, stop, names kept fp32 (None: quantized)]: neighbours treated alike make one run
    for c in w.columns:
        keep = c.role == RECURRENCE
        if spans and (spans[-1][2] is not None) == keep:
            spans[-1][1] = c.stop
            spans[-1][2] = spans[-1][2] + [c.name] if keep else None
        else:
            spans.append([c.start, c.stop, [c.name] if keep else None])
    runs = [Run(a, b, names and f"{', '.join(names)} drive{'s' if len(names) == 1 else ''} the recurrence")
            for a, b, names in spans]
    if all(r.reason is not None for r in runs):
        return Plan(weights, FP32, runs)
    return Plan(weights, bits, runs)
