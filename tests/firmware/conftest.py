import pytest


@pytest.fixture
def micro_artifact(artifacts):
    """ref-micro compiled for a microcontroller target."""
    return lambda target: artifacts("ref-micro", target)
