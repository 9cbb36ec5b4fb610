"""Surveys: occlusion over a whole data set into a store (Parquet), read by a data-set report.

``occsens.survey(model, images, out=...)`` (``run.py``) occludes every image, a shard at a time
(``shard.py``, the same code in-process and on Ray workers, ``on_ray.py``), into the store described
in ``store.py``; ``read_survey`` reads it back. The data-set report (``analysis.py`` computes,
``page.py`` presents) and the strategy clusters (``shortcuts.py``, spectral clustering as SpRAy does)
read the store, never the model. ``planted.py`` makes a CIFAR-like data set with a planted watermark,
the ground truth the shortcut detection is tested on.

Its place in the layers: above the engine and the report, below the command line; it knows nothing
of CIFAR-10 (the CLI hands it the images, labels and class names).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from occsens.datasurvey.analysis import cited
from occsens.datasurvey.run import survey
from occsens.datasurvey.store import MANIFEST, REPORT, read_manifest
from occsens.errors import OcclusionError
from occsens.errors import path as as_path

__all__ = ["MANIFEST", "REPORT", "cited", "read_manifest", "read_survey", "survey"]


def read_survey(folder: str | Path, columns: list[str] | None = None) -> Any:
    """The store in ``folder`` as a pandas DataFrame, one row per image in survey order (``columns``:
    only these). The same as ``pandas.read_parquet(folder)``, with the manifest checked first."""
    path = as_path(folder, "folder")
    if read_manifest(path) is None:
        raise OcclusionError(
            f"folder {str(path)!r} holds no survey (no {MANIFEST}); run occsens survey first"
        )
    import pandas as pd

    frame = pd.read_parquet(path, columns=columns)
    return frame.sort_values("index").reset_index(drop=True) if "index" in frame else frame
