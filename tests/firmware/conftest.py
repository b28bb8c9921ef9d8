import pytest

from rnnx.compiler import compile_export
from rnnx.export import export_model


@pytest.fixture(scope="session")
def micro_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref-micro") / "export"
    export_model("ref-micro", out)
    return out


@pytest.fixture(scope="session")
def micro_artifact(micro_export, tmp_path_factory):
    """ref-micro compiled for a microcontroller target, once per target."""
    made = {}

    def get(target):
        if target not in made:
            made[target] = tmp_path_factory.mktemp(target) / "artifact"
            compile_export(micro_export, target, made[target])
        return made[target]
    return get
