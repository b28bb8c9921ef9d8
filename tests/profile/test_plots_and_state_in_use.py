"""`rnnx.profile.plots` writes readable PNGs from real reports; `state_bytes_in_use` counts a KV cache's
filled slots and a linear state whole."""
import matplotlib.image
import pytest

from rnnx.errors import RnnxError
from rnnx.export import export_model
from rnnx.profile import profile_artifact
from rnnx.profile.plots import plot_report
from rnnx.profile.report import state_bytes_in_use


def test_plots_are_valid_pngs(artifact, tmp_path):
    report = profile_artifact(artifact, tokens=150, prefill_lengths=(16,))
    baseline = profile_artifact(artifact, tokens=100, prefill_lengths=(16,), threads=1)
    paths = plot_report(report, tmp_path / "plots", baseline=baseline, command="rnnx profile test")
    assert [p.name for p in paths] == ["ref-tiny-latency.png", "ref-tiny-memory.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = matplotlib.image.imread(path).shape
        assert height > 300 and width > 600
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [p.name for p in paths]  # no temp files left
    with pytest.raises(RnnxError, match="does not exist"):
        plot_report(report, tmp_path / "missing" / "plots")


def test_kv_cache_in_use_grows_to_its_window_and_a_linear_state_is_constant(tmp_path):
    swa = export_model("ref-tiny-swa", tmp_path / "swa")  # W = 64: keys and values (1, 4, 64, 32) per layer, pos
    slot = 2 * 2 * 4 * 32 * 4  # a slot of keys and values, 2 layers, 4 heads, 32 dims, fp32
    fixed = swa.state_bytes - 64 * slot  # the position counters
    assert [state_bytes_in_use(swa, t) for t in (0, 1, 10, 64, 1000)] == \
        [fixed, fixed + slot, fixed + 10 * slot, swa.state_bytes, swa.state_bytes]
    linear = export_model("ref-tiny", tmp_path / "linear")
    assert state_bytes_in_use(linear, 5) == linear.state_bytes
