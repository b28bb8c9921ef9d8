"""What an export's manifest says of its weights (fields of `rnnx.manifest.ExportManifest`): which initializer
is which module's weight and what its columns are for (`Weight`, written by `rnnx export` from what the model
declares), and how `rnnx quantize` wrote them (`Quantization`). Plain dataclasses: the manifest's reader on a
board reads them too."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

# what a weight's columns are for: a projection (quantized), or the recurrence's drive (kept fp32: an error in a
# decay or gate compounds through the state at every step)
PROJECTION, RECURRENCE = "projection", "recurrence"
# what a weight is to the model: a layer inside it, its output map, its input map (both fp32 unless asked)
LINEAR, HEAD, EMBEDDING = "linear", "head", "embedding"


@dataclass(frozen=True)
class Columns:
    """Output columns `[start, stop)` of a weight, computing what the model calls `name`; `role` "projection",
    or "recurrence": they drive the state's decay, forget gate, β or dt (`rnnx quantize` keeps them fp32)."""
    name: str
    start: int
    stop: int
    role: str

    ROLES: ClassVar[tuple[str, ...]] = (PROJECTION, RECURRENCE)


@dataclass(frozen=True)
class Weight:
    """A weight the graphs read from an initializer (`rnnx.export.weights`): `op` "MatMul", a linear layer's B
    `(K, N)` (in, out), or `(N, K)` behind a Transpose when `transposed` (a head tied to the embedding); or
    "Gather", an embedding table `(V, D)`. `kind` "linear", "head" (the output map) or "embedding" (the input
    map: a table, or the linear map of feature vectors). `columns` cut the output features (N, or D) in
    order. `initializers`: graph kind -> the initializers holding it there (as exported: fp32)."""
    module: str
    kind: str
    op: str
    shape: list[int]
    columns: list[Columns]
    initializers: dict[str, list[str]]
    transposed: bool = False

    KINDS: ClassVar[tuple[str, ...]] = (LINEAR, HEAD, EMBEDDING)

    @property
    def outputs(self) -> int:
        return self.shape[0] if self.transposed else self.shape[1]

    def problems(self, at: str) -> list[str]:
        if self.kind not in self.KINDS or self.op not in ("MatMul", "Gather") or len(self.shape) != 2:
            return [f"{at} ({self.module}) must be a 2-D MatMul or Gather weight of kind "
                    f"{', '.join(self.KINDS)}; got {self.kind} {self.op}{self.shape}"]
        bounds = [(c.start, c.stop) for c in self.columns]
        edges = [0, *(b for _, b in bounds)]
        found = [f"{at}.columns[{i}] ({c.name}) has role {c.role!r}, not one of {', '.join(Columns.ROLES)}"
                 for i, c in enumerate(self.columns) if c.role not in Columns.ROLES]
        if [a for a, _ in bounds] != edges[:-1] or edges[-1] != self.outputs or any(a >= b for a, b in bounds):
            found.append(f"{at}.columns {bounds} do not cut {self.module}'s {self.outputs} outputs in order")
        return found


@dataclass(frozen=True)
class KeptColumns:
    start: int
    stop: int
    reason: str


@dataclass(frozen=True)
class QuantizedWeight:
    """What `rnnx quantize` made of one weight tensor (read by `modules`: two for a head tied to the embedding):
    `bits` 8 or 4, or 32 where it is kept whole; the columns kept fp32 and why; its bytes before and after
    (quantized values, scales and kept columns)."""
    modules: list[str]
    shape: list[int]
    bits: int
    kept: list[KeptColumns]
    bytes_before: int
    bytes_after: int


@dataclass(frozen=True)
class QuantizationSource:
    export: str           # the fp32 export's directory, absolute
    manifest_sha256: str  # of its manifest.json: what `verify` compares against


@dataclass(frozen=True)
class Quantization:
    """How `rnnx quantize` wrote a quantized export's weights: `format` int8 (symmetric, a scale per output
    channel: DequantizeLinear axis 1) or int4 (symmetric, a scale per block of `group` along K: DequantizeLinear
    block_size, opset 21), scales of `scale_dtype`; the head and embedding quantized only when `head` /
    `embedding` (an embedding table as int8 rows, gathered then scaled: Gather, Cast, Mul). `activations` int8:
    each quantized MatMul's input is quantized too, as the graph says it (`ai.rnnx.QuantizeInt8PerToken`:
    symmetric, a scale per token; `rnnx.quantize.activations`), so that a compiler may multiply integers
    (dot-product instructions); None: fp32 activations. Bytes are of the weights one graph
    holds."""
    format: str
    group: int | None
    scale_dtype: str
    head: bool
    embedding: bool
    weights: list[QuantizedWeight]
    bytes_before: int
    bytes_after: int
    source: QuantizationSource
    activations: str | None = None

    FORMATS: ClassVar[tuple[str, ...]] = ("int8", "int4")
    ACTIVATIONS: ClassVar[tuple[str, ...]] = ("int8",)

    def problems(self) -> list[str]:
        found = [f"quantization.format is {self.format!r}, not one of {', '.join(self.FORMATS)}"] \
            if self.format not in self.FORMATS else []
        if self.activations is not None and self.activations not in self.ACTIVATIONS:
            found.append(f"quantization.activations is {self.activations!r}, not one of {', '.join(self.ACTIVATIONS)}")
        if self.format == "int4" and (self.group is None or self.group < 1):
            found.append(f"quantization.group is {self.group}, but int4 needs a positive block size")
        for total in ("bytes_before", "bytes_after"):
            if getattr(self, total) != sum(getattr(w, total) for w in self.weights):
                found.append(f"quantization.{total} is {getattr(self, total)}, but its weights sum to "
                             f"{sum(getattr(w, total) for w in self.weights)}")
        return found

