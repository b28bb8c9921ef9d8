"""An artifact directory as the runtime reads it: only json, hashlib and numpy, no compiler."""
from pathlib import Path

import numpy as np

from ..errors import RnnxError
from ..manifest import ArtifactManifest, StateSpec, read

INITIAL_STATE = "initial_state.npz"  # the state before any token, by manifest name
EXPORT_COPY = "export"                # the export directory the artifact was compiled from
WORKSPACE_SUFFIX = "_workspace"       # `main_workspace()`: the step's preallocated memory, passed to `main`


def read_artifact(directory: Path, *, check_files: bool = True) -> ArtifactManifest:
    """The artifact's manifest, validated, after checking every file's sha256."""
    return read(directory, ArtifactManifest, check_files=check_files)


def load_initial_state(artifact: Path, manifest: ArtifactManifest) -> list[np.ndarray]:
    """The artifact's initial state in manifest order, each tensor checked against the manifest's layout."""
    return read_state_file(Path(artifact) / INITIAL_STATE, manifest.state)


def read_state_file(path: Path, layout: list[StateSpec]) -> list[np.ndarray]:
    """A state saved as .npz by name (no pickle), in the order of `layout`, each tensor checked against it."""
    try:
        saved = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise RnnxError(f"cannot read state file {path}: {e}") from None
    with saved:
        values = []
        for spec in layout:
            if spec.name not in saved:
                raise RnnxError(f"state file {path} has no tensor {spec.name}")
            x = saved[spec.name]
            if (list(x.shape), str(x.dtype)) != (spec.shape, spec.dtype):
                raise RnnxError(f"state file {path}: {spec.name} is {x.dtype}{list(x.shape)}, "
                                f"the artifact needs {spec.dtype}{spec.shape}")
            values.append(x)
    return values
