import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """`exports(config, flavor="portable")`: the export directory, made once per session (read-only)."""
    from rnnx.export import export_model

    made = {}

    def get(config, flavor="portable"):
        if (config, flavor) not in made:
            made[config, flavor] = tmp_path_factory.mktemp(f"{config}-{flavor}") / "export"
            export_model(config, made[config, flavor], flavor=flavor)
        return made[config, flavor]
    return get


@pytest.fixture(scope="session")
def artifacts(exports, tmp_path_factory):
    """`artifacts(config, target="host", flavor="portable")`: the compiled artifact, made once per session
    (read-only)."""
    from rnnx.packaging import compile_export

    made = {}

    def get(config, target="host", flavor="portable"):
        if (config, target, flavor) not in made:
            made[config, target, flavor] = tmp_path_factory.mktemp(f"{config}-{target}") / "artifact"
            compile_export(exports(config, flavor), target, made[config, target, flavor])
        return made[config, target, flavor]
    return get


@pytest.fixture
def tiny_export(exports):
    return exports("ref-tiny")
