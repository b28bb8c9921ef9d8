"""Which initializer of each graph is which module's weight, and what its columns are for (`rnnx.weights.Weight`):
what `rnnx quantize` reads, so that it needs the export only. The graphs hold each weight as a folded constant
(`val_6`, already transposed to `(K, N)`); the dynamo exporter names, on the MatMul or Gather reading it, the module
it was called in (`pkg.torch.onnx.name_scopes`). The roles are what the model declares next to its layers
(`rnnx.models.layers.declare_columns`, `declare_kind`)."""
import ast

import onnx
from torch import nn

from ..weights import EMBEDDING, HEAD, LINEAR, PROJECTION, Columns, Weight


def describe_weights(model: nn.Module, graphs: dict[str, onnx.ModelProto]) -> list[Weight]:
    """Every weight the graphs read from an initializer by a MatMul (an nn.Linear's) or a Gather (an
    nn.Embedding's), in the order the step graph first reads them."""
    modules = dict(model.named_modules())
    found: dict[str, Weight] = {}
    for kind in sorted(graphs, key=lambda k: k != "step"):
        graph = graphs[kind].graph
        initializers = {i.name: list(i.dims) for i in graph.initializer}
        producer = {out: n for n in graph.node for out in n.output}
        for node in graph.node:
            read = _weight_read(node, initializers, producer)
            name = _module_name(node)
            module = modules.get(name)
            if read is None or not isinstance(module, nn.Linear if node.op_type == "MatMul" else nn.Embedding):
                continue
            initializer, transposed = read
            weight = _describe(name, module, node, transposed, initializers[initializer], graph)
            previous = found.setdefault(name, weight)
            names = previous.initializers.setdefault(kind, [])
            if initializer not in names:
                names.append(initializer)
    return list(found.values())


def _weight_read(node: onnx.NodeProto, initializers: dict, producer: dict) -> tuple[str, bool] | None:
    """(initializer, transposed) that a MatMul reads as B (itself or through a Transpose: a tied head) or a
    Gather as its table; None for any other node."""
    if node.op_type == "Gather" and node.input[0] in initializers:
        return node.input[0], False
    if node.op_type != "MatMul":
        return None
    b = node.input[1]
    if b in initializers:
        return b, False
    source = producer.get(b)
    if source is not None and source.op_type == "Transpose" and source.input[0] in initializers:
        return source.input[0], True
    return None


def _module_name(node: onnx.NodeProto) -> str | None:
    """The module the node was traced in: the scope before the op's own, less the `model.` of StateIO."""
    scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
    if scopes is None:
        return None
    scopes = ast.literal_eval(scopes)
    return scopes[-2].removeprefix("model.") if len(scopes) >= 3 and scopes[-2].startswith("model.") else None


def _describe(name: str, module: nn.Module, node: onnx.NodeProto, transposed: bool, shape: list[int],
              graph: onnx.GraphProto) -> Weight:
    if isinstance(module, nn.Embedding):
        op, expected, kind = "Gather", [module.num_embeddings, module.embedding_dim], EMBEDDING
        parts = ((name.rpartition(".")[2], module.embedding_dim, PROJECTION),)
    else:
        op, expected = "MatMul", [module.out_features, module.in_features][::1 if transposed else -1]
        kind = getattr(module, "weight_kind", None) or (HEAD if _is_output(node, graph) else LINEAR)
        parts = getattr(module, "columns", None) or ((name.rpartition(".")[2], module.out_features, PROJECTION),)
    # a bug of this mapping, not the user's: the module named is not the one whose weight this is
    assert shape == expected, f"{node.name} reads a {shape} weight as {name}'s, which is {expected}"
    columns, start = [], 0
    for part, size, role in parts:
        columns.append(Columns(part, start, start + size, role))
        start += size
    return Weight(name, kind, op, shape, columns, {}, transposed)


def _is_output(node: onnx.NodeProto, graph: onnx.GraphProto) -> bool:
    """A model that declares no head: the MatMul giving the graph's first output (or its bias's Add) is it."""
    output = graph.output[0].name
    return node.output[0] == output or any(
        n.op_type == "Add" and node.output[0] in n.input and n.output[0] == output for n in graph.node)
