"""Imported families compiled for boards and a microcontroller, run under their emulators, against the
checkpoint in its own framework (and rnnx's PyTorch model)."""
import pytest

from rnnx.export import export_model
from rnnx.packaging import compile_export
from rnnx.verify import verify_emulated

from .checkpoints import save_checkpoint

pytest.importorskip("fla", reason="the source framework flash-linear-attention is not installed")

# one family per op path by default; the rest of the grid is slow
FAST = {("gated_deltanet", "raspberry-pi-5"), ("gated_deltanet", "riscv64"), ("gated_deltanet", "cortex-m55"),
        ("gated_deltanet", "cortex-m4f"),
        ("mamba2", "raspberry-pi-5"), ("mamba2", "riscv64")}
GRID = [(f, t) for f in ("gated_deltanet", "delta_net", "mamba2", "retnet", "gla", "hgrn2")
        for t in ("raspberry-pi-5", "riscv64")] + [("gated_deltanet", "cortex-m55"), ("gated_deltanet", "cortex-m4f")]


@pytest.fixture(scope="module")
def family_export(tmp_path_factory):
    made = {}

    def get(family):
        if family not in made:
            root = tmp_path_factory.mktemp(family)
            export_model(str(save_checkpoint(family, root / "checkpoint")), root / "export")
            made[family] = root / "export"
        return made[family]
    return get


@pytest.mark.parametrize("family, target", [pytest.param(f, t, marks=() if (f, t) in FAST else pytest.mark.slow)
                                            for f, t in GRID])
def test_emulated_artifact_matches_source_framework(family_export, tmp_path, family, target):
    compile_export(family_export(family), target, tmp_path / "artifact")
    _, checks = verify_emulated(tmp_path / "artifact", prompt=12, steps=8)
    report = "\n".join(f"{c.name}: {c.max_abs:.2e} (rel {c.max_rel:.2e})" for c in checks)
    assert all(c.passed for c in checks) and any(" vs fla " in c.name or " vs transformers " in c.name
                                                  for c in checks), report
