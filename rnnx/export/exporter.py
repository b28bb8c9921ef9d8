"""`rnnx export`: a model on rnnx ops -> `prefill.onnx`, `step.onnx` and `manifest.json` in one directory."""
import dataclasses
import shutil
from pathlib import Path

import onnx
from onnx import numpy_helper

from .. import __version__
from ..errors import RnnxError
from ..fileio import atomic_directory, check_output
from ..manifest import ExportManifest, Graph, OpUse, Source, StateSpec, hashes, write
from ..models.checkpoint import is_checkpoint, read_checkpoint
from ..ops import OPS
from ..tokenizer import TOKENIZER_FILE, HuggingFaceTokenizer
from .flavors import apply_flavor
from .graphs import GRAPHS, export_graph, flat_state, model_signature
from .manifest import describe_values
from .onnx_ops import DOMAIN, VERSION, register_schemas
from .source import load_model
from .state import state_owners
from .weights import describe_weights

_TWO_GB = 2**31


def export_model(source: str, out: Path, flavor: str = "portable", seed: int = 0,
                 batch_size: int = 1, tokenizer: Path | None = None) -> ExportManifest:
    """Export the model named by `source` into the directory `out`, written atomically; returns the manifest.
    `tokenizer`, the model's tokenizer.json, is copied in as `TOKENIZER_FILE` once it loads and fits the vocab."""
    check_output(out, ExportManifest.FILE)
    if is_checkpoint(source):  # recorded absolute, so that verify finds the checkpoint from anywhere
        source = str(Path(source).resolve())
        tokenizer = tokenizer or read_checkpoint(source).tokenizer
    # a file that does not load fails before the slow work; its size is checked once the graphs give the vocab
    model_tokenizer = HuggingFaceTokenizer(tokenizer) if tokenizer is not None else None
    model = load_model(source, seed)
    register_schemas()
    names, state, _ = flat_state(model, batch_size)
    sig = model_signature(model, batch_size)
    if model_tokenizer is not None and sig.input != "tokens":
        raise RnnxError(f"{source} takes {sig.input}, not tokens: it has no use for a tokenizer")
    graphs = {kind: export_graph(model, kind, batch_size, sig) for kind in GRAPHS}
    used = sorted({n.op_type for n in graphs["prefill"].graph.node if n.domain == DOMAIN})
    owners = state_owners(graphs["step"], names)  # before a flavor renames the ops' nodes
    weights = describe_weights(model, graphs)
    for kind, proto in graphs.items():
        _name_sequence_axis(proto)
        if kind == "prefill":  # an initializer named like an input is that input's default: the state is optional
            proto.graph.initializer.extend(numpy_helper.from_array(s.numpy(), f"past_{n}") for n, s in zip(names, state))
        apply_flavor(proto, flavor)
        onnx.helper.set_model_props(proto, {"rnnx_version": __version__, "rnnx_graph": kind, "rnnx_flavor": flavor})
        onnx.checker.check_model(proto, full_check=True)
    if model_tokenizer is not None:
        model_tokenizer.check_vocab(sig.output_size)
    with atomic_directory(out, ExportManifest.FILE) as tmp:
        for kind, proto in graphs.items():
            onnx.save_model(proto, tmp / f"{kind}.onnx", save_as_external_data=proto.ByteSize() >= _TWO_GB,
                            location=f"{kind}.onnx.data")
        if model_tokenizer is not None:
            shutil.copyfile(model_tokenizer.path, tmp / TOKENIZER_FILE)
        state_specs = [StateSpec(n, f"past_{n}", f"present_{n}", list(s.shape), str(s.dtype).removeprefix("torch."),
                                 s.numel() * s.element_size(), owners[n]) for n, s in zip(names, state)]
        return write(tmp, ExportManifest(
            rnnx_version=__version__,
            model=Source(source, seed, _config(model)),
            signature=sig,
            flavor=flavor,
            batch_size=batch_size,
            opset_import={o.domain or "ai.onnx": o.version for o in graphs["prefill"].opset_import},
            ops=[OpUse(n, DOMAIN, VERSION, _spelling(graphs["prefill"], n)) for n in used],
            graphs={kind: Graph(f"{kind}.onnx", describe_values(p.graph.input), describe_values(p.graph.output))
                    for kind, p in graphs.items()},
            state=state_specs,
            state_bytes=sum(s.bytes for s in state_specs),
            files=hashes(tmp, [p.name for p in tmp.iterdir() if p.is_file()]),
            tokenizer=TOKENIZER_FILE if model_tokenizer is not None else None,
            weights=weights))


def _name_sequence_axis(proto: onnx.ModelProto) -> None:
    """The exporter names the dynamic length after a symbol (`s27`); call it T everywhere."""
    tokens = proto.graph.input[0].type.tensor_type.shape.dim
    symbol = tokens[1].dim_param
    if not symbol:
        return
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = "T"


def _spelling(proto: onnx.ModelProto, op_name: str) -> str:
    if any(n.domain == DOMAIN and n.op_type == op_name for n in proto.graph.node):
        return f"{DOMAIN}::{op_name}"
    standard = OPS[op_name].standard_op  # a flavor rewrote the node into it
    domain = next(n.domain for n in proto.graph.node if n.op_type == standard)
    return f"{domain or 'ai.onnx'}::{standard}"


def _config(model) -> dict | None:
    cfg = getattr(model, "cfg", None)
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else None
