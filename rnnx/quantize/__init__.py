"""`rnnx quantize`: an export -> the same export with int8 or int4 weights, in standard ONNX (`DequantizeLinear`
feeding each MatMul), written atomically with its manifest. It reads the export alone: which weight is which,
and which columns drive the recurrence, is what the export recorded (`ExportManifest.weights`). Never quantized:
the state, norms, convolutions and other parameters outside MatMuls, the columns that drive the recurrence;
the head and the embedding unless asked."""
import dataclasses
import shutil
from pathlib import Path

import onnx

from .. import __version__
from ..errors import RnnxError
from ..fileio import atomic_directory, check_output, sha256
from ..manifest import ExportManifest, hashes, read, write
from ..weights import Quantization, QuantizationSource
from .choose import plan
from .rewrite import rewrite, use_int4_opset

_TWO_GB = 2**31


def quantize_export(export: Path, out: Path, weights: str, group: int = 32, head: bool = False,
                    embedding: bool = False, activations: str | None = None) -> ExportManifest:
    """Quantize the export directory `export` into `out` (written atomically): `weights` int8 (a scale per output
    channel) or int4 (a scale per `group` weights along K, opset 21); the head and the embedding too with `head`
    / `embedding` (the embedding as int8 rows); with `activations` "int8", each quantized MatMul's input too
    (int8 per token, `activations.py`). Returns the new manifest, whose `quantization` says what was
    done to each weight and names `export` as its source."""
    export, out = Path(export), Path(out)
    if weights not in Quantization.FORMATS:
        raise RnnxError(f"--weights {weights} is not a format rnnx writes: give one of "
                        f"{', '.join(Quantization.FORMATS)}")
    if activations is not None and activations not in Quantization.ACTIVATIONS:
        raise RnnxError(f"--activations {activations} is not a format rnnx writes: give "
                        f"{', '.join(Quantization.ACTIVATIONS)} or leave it out (fp32 activations)")
    if group < 1:
        raise RnnxError(f"--group {group} must be a positive block size")
    check_output(out, ExportManifest.FILE)
    source = read(export, ExportManifest)
    if source.quantization is not None:
        raise RnnxError(f"{export} is already quantized ({source.quantization.format}, from "
                        f"{source.quantization.source.export}): quantize the fp32 export it came from")
    if source.weights is None:
        raise RnnxError(f"{export / ExportManifest.FILE} does not record its weights (exported before rnnx did): "
                        "re-export the model with this rnnx, then quantize that")
    plans = plan(source.weights, weights, group, head, embedding)
    graphs = {kind: onnx.load(export / g.file) for kind, g in source.graphs.items()}
    for kind, proto in graphs.items():
        rewrite(proto, kind, plans, group, activations is not None)
        if weights == "int4":
            use_int4_opset(proto)
        onnx.helper.set_model_props(proto, {p.key: p.value for p in proto.metadata_props} | {"rnnx_weights": weights}
                                    | ({"rnnx_activations": activations} if activations else {}))
        onnx.checker.check_model(proto, full_check=True)
    records = [p.record(group) for p in plans]
    with atomic_directory(out, ExportManifest.FILE) as tmp:
        for kind, proto in graphs.items():
            file = source.graphs[kind].file
            onnx.save_model(proto, tmp / file, save_as_external_data=proto.ByteSize() >= _TWO_GB,
                            location=f"{file}.data")
        if source.tokenizer is not None:
            shutil.copyfile(export / source.tokenizer, tmp / source.tokenizer)
        return write(tmp, dataclasses.replace(
            source,
            rnnx_version=__version__,
            opset_import={o.domain or "ai.onnx": o.version for o in graphs["prefill"].opset_import},
            files=hashes(tmp, [p.name for p in tmp.iterdir() if p.is_file()]),
            quantization=Quantization(
                format=weights, group=group if weights == "int4" else None, scale_dtype="float32", head=head,
                embedding=embedding, weights=records, bytes_before=sum(r.bytes_before for r in records),
                bytes_after=sum(r.bytes_after for r in records),
                source=QuantizationSource(str(export.resolve()), sha256(export / ExportManifest.FILE)),
                activations=activations)))
