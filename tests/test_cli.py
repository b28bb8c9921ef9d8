"""The `rnnx` command as a user runs it: a real subprocess, real exit codes."""
import json
import subprocess
import sys


def rnnx(*args):
    return subprocess.run([sys.executable, "-m", "rnnx", *args], capture_output=True, text=True, timeout=300)


def test_ops_lists_the_four_ops():
    result = rnnx("ops", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["op"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"decay_linear_attention", "gated_delta_rule", "aaren", "sliding_window_attention"}
    assert rows["decay_linear_attention"]["bytes_per_head"] == 64 * 64 * 4
    table = rnnx("ops")
    assert table.returncode == 0 and all(name in table.stdout for name in rows)


def test_run_generates_bytes_with_a_built_in_model():
    result = rnnx("run", "ref-tiny", "--prompt", "hello", "--tokens", "8", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "tokens/s" in result.stdout


def test_unknown_model_is_one_line_and_exit_code_2():
    result = rnnx("run", "ref-nope")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown model config 'ref-nope'; built-in configs: ref-tiny, ref-small, ref-small-gdn, ref-aaren, ref-tiny-swa, ref-small-softmax, ref-micro"]
    assert "Traceback" not in result.stderr
