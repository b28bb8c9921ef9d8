"""Models of feature vectors (float32 per step, class scores out) through every packaging kind's own program:
ref-micro-motion compiled for every target with an emulator here passes `verify_emulated` against PyTorch
(host: `verify`, against PyTorch and onnxruntime), ref-aaren-motion on host and raspberry-pi-5; the static
step's C declares the feature step; android's objects build; `rnnx profile` runs on host and on the
cortex-m4f bundle; a non-finite feature is refused before any program runs."""
import numpy as np
import pytest

from rnnx.errors import RnnxError
from rnnx.packaging import profile, run_program
from rnnx.runtime.artifact import read_artifact
from rnnx.verify import verify, verify_emulated

MICRO, AAREN = "ref-micro-motion", "ref-aaren-motion"
# every target with an emulator here (`rnnx targets`): the aarch64 boards, RISC-V with and without vectors, Cortex-M
EMULATED = ["raspberry-pi-4", "raspberry-pi-5", "jetson-orin-cpu", "riscv64", "riscv64-rvv", "cortex-m4f",
            "cortex-m55", "cortex-m7"]


def _all_pass(checks) -> None:
    failed = [c for c in checks if not c.passed]
    assert checks and not failed, failed


@pytest.mark.parametrize("config", [MICRO, AAREN])
def test_host_artifact_verifies_against_pytorch_and_onnxruntime(artifacts, config):
    _, checks = verify(artifacts(config, "host"), prompt=40, steps=16, stream=100)
    _all_pass(checks)


@pytest.mark.parametrize("config, target", [(MICRO, t) for t in EMULATED] + [(AAREN, "raspberry-pi-5")])
def test_emulated_program_verifies_against_pytorch(artifacts, config, target):
    name, checks = verify_emulated(artifacts(config, target), prompt=24, steps=8)
    assert target in name
    _all_pass(checks)


def test_static_step_takes_a_feature_vector(artifacts):
    manifest = read_artifact(artifacts(MICRO, "cortex-m4f"))
    header = (artifacts(MICRO, "cortex-m4f") / manifest.static.bundle / "rnnx_model.h").read_text()
    assert "const float *rnnx_model_step(const float *features);" in header
    assert f"#define RNNX_INPUT_FEATURES {manifest.signature.input_size}\n" in header
    assert f"#define RNNX_OUTPUTS {manifest.signature.output_size}\n" in header
    assert "RNNX_INPUT_TOKENS" not in header


def test_android_objects_build(artifacts):
    manifest = read_artifact(artifacts(MICRO, "android-arm64"))
    assert set(manifest.libraries) == {"prefill", "step"}


def test_profile_on_host_and_the_cortex_m4f_bundle(artifacts):
    host = profile(artifacts(MICRO, "host"), tokens=50, prefill_lengths=(64,))
    assert host["step_us"]["p50"] > 0 and host["prefill_tokens_per_s"][64] > 0
    bundle = profile(artifacts(MICRO, "cortex-m4f"))
    assert bundle["instructions_per_step"]["min"] > 0 and bundle["ram_bytes"] <= bundle["capacity"]["ram"]


def test_a_non_finite_feature_is_refused_before_the_program_runs(artifacts):
    features = np.zeros((4, 6), np.float32)
    features[2, 1] = np.nan
    for target in ("raspberry-pi-5", "cortex-m4f"):
        with pytest.raises(RnnxError, match=r"features hold nan at index .*2.*1.*: features must be finite"):
            run_program(artifacts(MICRO, target), features)
