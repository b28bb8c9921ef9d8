"""Quantized exports compiled (rnnx/compiler/quantized.py): the weights stay int8 / int4 in the library, the
compiled code equals the quantized graphs (unfused onnxruntime) to fp32 rounding on the host and in the boards'
own programs under emulation (with int8 activations: to the normalized-MSE bound, on the host through the VNNI
integer kernels where it has them), its predictions' KL from the fp32 export stays flat along a stream, and
ref-tiny in int8 fits a Cortex-M4F's flash."""
import pytest

from rnnx.packaging import compile_export, profile
from rnnx.quantize import quantize_export
from rnnx.verify import drift, verify, verify_emulated


@pytest.fixture(scope="module")
def quantized(exports, tmp_path_factory):
    """`quantized(config, weights, target)`: the compiled quantized artifact, made once per module (read-only);
    `weights` "int8" or "int4", "-a8" after it for int8 activations."""
    made = {}

    def get(config, weights, target="host"):
        if (config, weights) not in made:
            made[config, weights] = tmp_path_factory.mktemp(f"{config}-{weights}") / "export"
            bits, _, activations = weights.partition("-a")
            quantize_export(exports(config), made[config, weights], bits, activations="int8" if activations else None)
        if (config, weights, target) not in made:
            made[config, weights, target] = tmp_path_factory.mktemp(f"{config}-{weights}-{target}") / "artifact"
            compile_export(made[config, weights], target, made[config, weights, target])
        return made[config, weights, target]
    return get


def _all_pass(checks) -> None:
    failed = [c for c in checks if not c.passed]
    assert checks and not failed, failed


@pytest.mark.parametrize("config, weights", [
    ("ref-tiny", "int8"), ("ref-tiny", "int4"), ("ref-micro-motion", "int8"), ("ref-micro-motion", "int4"),
    ("ref-tiny", "int8-a8"), ("ref-tiny", "int4-a8")])
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


def test_int8_activations_multiply_integers_on_a_host_with_vnni(quantized):
    from rnnx.kernels.quantized_activations import has_vnni
    from rnnx.targets import get_target
    import tvm

    if not has_vnni(tvm.target.Target(get_target("host").resolved()), [(1, 32), (1, 8, 64), (1, 32)]):
        pytest.skip("this CPU has no AVX-512 VNNI: int8 activations are quantized, then multiplied in fp32")
    artifact = quantized("ref-tiny", "int4-a8")
    assert b"integer_matmul_int4" in (artifact / "step.so").read_bytes()  # the kernels' symbols


@pytest.mark.parametrize("target, weights", [("raspberry-pi-5", "int8"), ("riscv64", "int8"), ("cortex-m4f", "int8"),
                                             ("raspberry-pi-5", "int4-a8")])
def test_quantized_program_under_emulation_equals_its_graphs(quantized, target, weights):
    _, checks = verify_emulated(quantized("ref-tiny", weights, target), prompt=16, steps=8)
    _all_pass(checks)


def test_ref_tiny_in_int8_fits_a_cortex_m4f(quantized):
    footprint = profile(quantized("ref-tiny", "int8", "cortex-m4f"))
    assert footprint["flash_bytes"] <= footprint["capacity"]["flash"]  # fp32: 1.97 MB of weights for 1 MB
