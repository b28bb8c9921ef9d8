"""The `rnnx` command as a user runs it: a real subprocess, real exit codes."""
import json
import os
import subprocess
import sys
from pathlib import Path


def rnnx(*args):
    return subprocess.run([sys.executable, "-m", "rnnx", *args], capture_output=True, text=True, timeout=300)


def test_ops_lists_the_five_ops():
    result = rnnx("ops", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["op"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"decay_linear_attention", "gated_delta_rule", "aaren", "sliding_window_attention",
                         "causal_conv1d"}
    assert rows["decay_linear_attention"]["bytes_per_head"] == 64 * 64 * 4
    assert rows["causal_conv1d"]["bytes_per_head"] == 64 * 3 * 4  # a head's 64 channels, the last 3 inputs each
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
        "error: unknown model config 'ref-nope'; built-in configs: ref-tiny, ref-small, ref-small-gdn, ref-aaren, ref-tiny-swa, ref-small-softmax, ref-micro, ref-aaren-motion, ref-micro-motion"]
    assert "Traceback" not in result.stderr


def rnnx_with_a_bug(home: Path, error: str, *args):
    """`rnnx ARGS` in a subprocess whose `rnnx.ops.registry.describe` raises `error`: a genuine failure inside
    `rnnx ops`, with crash files under `home`."""
    driver = home / "driver.py"
    driver.write_text("import sys\nimport rnnx.ops.registry\nfrom rnnx.cli import app\n\n"
                      f"def describe(*args, **kwargs):\n    raise {error}\n\n"
                      "rnnx.ops.registry.describe = describe\napp(prog_name='rnnx', args=sys.argv[1:])\n")
    return subprocess.run([sys.executable, driver, *args], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"RNNX_HOME": str(home)})


def test_a_bug_is_one_line_saying_so_and_where_its_traceback_is(tmp_path):
    result = rnnx_with_a_bug(tmp_path, "ZeroDivisionError('division by zero')", "ops")
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    prefix = ("error: internal error in rnnx (a bug, not your input): ZeroDivisionError: division by zero; "
              "traceback in ")
    assert line.startswith(prefix)
    log = Path(line.removeprefix(prefix))
    assert log.parent == tmp_path / "crash" and list(log.parent.iterdir()) == [log]  # whole: no temporary left
    assert log.read_text().startswith("Traceback (most recent call last):")
    assert "in describe" in log.read_text() and "ZeroDivisionError: division by zero" in log.read_text()


def test_debug_shows_a_bugs_traceback(tmp_path):
    result = rnnx_with_a_bug(tmp_path, "ZeroDivisionError('division by zero')", "--debug", "ops")
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):") and "in describe" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == ("error: internal error in rnnx (a bug, not your input): "
                                                      "ZeroDivisionError: division by zero; traceback above")
    assert not (tmp_path / "crash").exists()


def test_ctrl_c_is_one_quiet_line_and_exit_code_130(tmp_path):
    result = rnnx_with_a_bug(tmp_path, "KeyboardInterrupt", "ops")
    assert (result.returncode, result.stderr) == (130, "interrupted\n")
