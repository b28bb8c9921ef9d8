"""The README's two commands are the project's contract: CI must run the second one verbatim."""
from pathlib import Path

ROOT = Path(__file__).parent.parent


def readme_commands() -> list[str]:
    return [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("bash install.sh")]


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    first, second = readme_commands()[:2]
    for stage in ("rnnx export ref-tiny", "rnnx compile", "rnnx verify", "rnnx profile"):
        assert stage in first
    assert "pytest" in second
    assert second in (ROOT / ".ci" / "run").read_text().splitlines()
