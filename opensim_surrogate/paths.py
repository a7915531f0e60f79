"""Where things live: shared data, trained bundles, the repository root."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import DataNotFoundError

#: Environment variable pointing at the shared data directory.
DATA_ENV = "OPENSIM_SURROGATE_DATA"

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
#: Trained surrogate bundles, one folder per OpenSim model family / bundle name.
BUNDLES_DIR = Path(os.environ.get("OPENSIM_SURROGATE_BUNDLES", REPO_ROOT / "osim_models"))


def data_root(required: bool = True) -> Path:
    """Return the shared data directory.

    ``$OPENSIM_SURROGATE_DATA`` if set, else ``../shared/data`` relative to the
    repository root.

    Raises
    ------
    DataNotFoundError
        If ``required`` and the directory does not exist.
    """
    env = os.environ.get(DATA_ENV)
    root = Path(env).expanduser() if env else (REPO_ROOT.parent / "shared" / "data")
    root = root.resolve()
    if required and not root.is_dir():
        raise DataNotFoundError(
            "shared data directory not found",
            path=root,
            hint=f"set ${DATA_ENV} to the folder holding models/, schreiber2019/ and hamner2013/",
        )
    return root


def data_path(*parts: str) -> Path:
    """Path inside the shared data directory; raises if the file is absent."""
    p = data_root().joinpath(*parts)
    if not p.exists():
        raise DataNotFoundError("file not found in the shared data", path=p,
                                hint=f"check ${DATA_ENV} or the file name")
    return p
