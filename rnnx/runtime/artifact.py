"""An artifact directory as the runtime reads it: only json and hashlib, no compiler."""
from pathlib import Path

from ..fileio import read_checked_manifest

ARTIFACT_MANIFEST, ARTIFACT_FORMAT = "artifact.json", "rnnx-artifact/1"
INITIAL_STATE = "initial_state.npz"  # the state before any token, by manifest name
EXPORT_COPY = "export"                # the export directory the artifact was compiled from
WORKSPACE_SUFFIX = "_workspace"       # `main_workspace()`: the step's preallocated memory, passed to `main`


def read_artifact(directory: Path) -> dict:
    """The artifact's manifest, after checking every file's sha256."""
    return read_checked_manifest(directory, ARTIFACT_MANIFEST, ARTIFACT_FORMAT, "artifact")
