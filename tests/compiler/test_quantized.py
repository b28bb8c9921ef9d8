"""Quantized exports compiled (rnnx/compiler/quantized.py): the weights stay int8 / int4 in the library, the
compiled code equals the quantized graphs (unfused onnxruntime) to fp32 rounding on the host and in the boards'
own programs under emulation, its predictions' KL from the fp32 export stays flat along a stream, and ref-tiny in
int8 fits a Cortex-M4F's flash."""
import pytest

from rnnx.packaging import compile_export, profile
from rnnx.quantize import quantize_export
from rnnx.verify import drift, verify, verify_emulated


@pytest.fixture(scope="module")
def quantized(exports, tmp_path_factory):
    """`quantized(config, weights, target)`: the compiled quantized artifact, made once per module (read-only)."""
    made = {}

    def get(config, weights, target="host"):
        if (config, weights) not in made:
            made[config, weights] = tmp_path_factory.mktemp(f"{config}-{weights}") / "export"
            quantize_export(exports(config), made[config, weights], weights)
        if (config, weights, target) not in made:
            made[config, weights, target] = tmp_path_factory.mktemp(f"{config}-{weights}-{target}") / "artifact"
            compile_export(made[config, weights], target, made[config, weights, target])
        return made[config, weights, target]
    return get


def _all_pass(checks) -> None:
    failed = [c for c in checks if not c.passed]
    assert checks and not failed, failed


@pytest.mark.parametrize("weights", ["int8", "int4"])
@pytest.mark.parametrize("config", ["ref-tiny", "ref-micro-motion"])
def test_compiled_quantized_model_equals_its_graphs_and_stays_near_fp32_along_a_stream(quantized, config, weights):
    artifact = quantized(config, weights)
    name, checks = verify(artifact, prompt=40, steps=8, stream=200)
    assert all("unfused" in c.name or "prefill 40 + 8" in c.name for c in checks)  # not PyTorch: fp32 weights
    _all_pass(checks)
    kl = drift(artifact, steps=500)
    assert kl.flat and kl.mean < 1e-3, kl


def test_int8_weights_stay_int8_in_the_library(exports, artifacts, quantized):
    fp32 = profile(artifacts("ref-tiny"), tokens=10, prefill_lengths=(16,))["memory"]["library_bytes"]
    int8 = profile(quantized("ref-tiny", "int8"), tokens=10, prefill_lengths=(16,))["memory"]["library_bytes"]
    assert int8 < 0.5 * fp32, (int8, fp32)  # 1.5 of ref-tiny's 1.97 MB of weights are quantized (4x smaller)


@pytest.mark.parametrize("target", ["raspberry-pi-5", "riscv64", "cortex-m4f"])
def test_quantized_program_under_emulation_equals_its_graphs(quantized, target):
    _, checks = verify_emulated(quantized("ref-tiny", "int8", target), prompt=16, steps=8)
    _all_pass(checks)


def test_ref_tiny_in_int8_fits_a_cortex_m4f(quantized):
    footprint = profile(quantized("ref-tiny", "int8", "cortex-m4f"))
    assert footprint["flash_bytes"] <= footprint["capacity"]["flash"]  # fp32: 1.97 MB of weights for 1 MB
