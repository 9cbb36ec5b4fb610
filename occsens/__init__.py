"""occsens: occlusion sensitivity you can check.

import occsens
res = occsens.occlude(model, images, patch=4)      # the image minus a 4x4 grey window
res.heatmap, res.drop, res.class_map, res.class_counts, res.attribution()
"""

from occsens.checks import CheckResult, run_checks
from occsens.engine import (
    ENGINE_TOLERANCE,
    Occlusion,
    Plan,
    as_images,
    as_model,
    eval_mode,
    notebook_occlude,
    occlude,
    register_pointwise,
)
from occsens.errors import OcclusionError
from occsens.images import read_image, read_images

__version__ = "0.1.0"

__all__ = [
    "ENGINE_TOLERANCE",
    "CheckResult",
    "Occlusion",
    "OcclusionError",
    "Plan",
    "__version__",
    "as_images",
    "as_model",
    "eval_mode",
    "load_model",
    "notebook_occlude",
    "occlude",
    "read_image",
    "read_images",
    "register_pointwise",
    "run_checks",
]


def load_model(name: str = "default"):  # noqa: ANN201 - imported lazily to keep `import occsens` light
    """A shipped CIFAR-10 model ("default" or "greyscale") in eval mode; see ``occsens.cifar.models``."""
    from occsens.cifar.models import load_model as _load

    return _load(name)
