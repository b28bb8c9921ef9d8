"""The README's two commands are the project's contract: CI must run the second one verbatim."""
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent


def readme_commands() -> list[str]:
    return [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("bash install.sh")]


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    first, second = readme_commands()[:2]
    for stage in ("rnnx export examples/text/checkpoint", "rnnx compile", "rnnx verify", "--data", "rnnx profile",
                  "rnnx run"):
        assert stage in first
    assert "pytest" in second
    assert second in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_first_command_runs_the_main_job_on_the_trained_checkpoint(tmp_path):
    """The first command after its install, as a newcomer runs it from a clone: it exits 0, scores the trained
    model's held-out bits per byte (well below a uniform byte's 8) and generates text."""
    first = readme_commands()[0].removeprefix("bash install.sh && ")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    done = subprocess.run(["bash", "-c", first], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env=os.environ | {"COLUMNS": "200"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    bits = re.search(r"rnnx on host\s*│\s*([0-9.]+)", done.stdout)
    assert bits and float(bits.group(1)) < 3, done.stdout[-3000:]
    assert "tokens/s" in done.stdout.splitlines()[-1]  # `rnnx run`'s closing line, after the generated text
