"""Conformance: occsens' properties of occlusion, as a test of anyone's occlusion code.

    from occsens.conformance import verify
    for r in verify(my_occlusion):          # my_occlusion(model, images, *, patch, stride, fill)
        print(r.name, r.verdict, r.counterexample)

The contract an implementation is checked against: ``impl(model, images, *, patch, stride, fill)``
gets a torch model (eval mode, float32 pixel-space ``[B, C, H, W]`` in, logits ``[B, K]`` out),
float32 ``images [N, C, H, W]``, ``patch`` and ``stride`` as (height, width) pairs and ``fill`` a
float, and returns per-pixel scores ``[N, H, W]`` (numpy or torch) with Captum's meaning: each
pixel's mean drop of the target class's softmax probability over the windows covering it, the
target being each image's clean prediction.

Properties of kind "contract" hold for any correct occlusion (``properties.PROPERTIES``); the one
of kind "convention" (border windows) says which documented choice the implementation makes.
Oracle models with closed-form answers (``oracles``, ``expected``) turn "looks plausible" into
"equals", and a failure is shrunk to a small case and named when it matches a known mistake.

Adapters for Captum, MONAI, the shared notebook and occsens are in ``adapters``; the command is
``occsens conform``; ``pytest --occsens-conform MODULE:FUNCTION`` (``pytest_plugin``) runs the
properties as test items. The public names load on first use, so the pytest plugin, which imports
this package in every pytest run, costs no torch import where it is not asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from occsens.conformance.results import DEFAULT_EXAMPLES, PropertyResult, Unsupported, contract_failures
from occsens.errors import OcclusionError

if TYPE_CHECKING:
    from occsens.conformance.adapters import ADAPTERS, load_impl
    from occsens.conformance.run import assert_conforms, verify

_LAZY = {
    "ADAPTERS": "occsens.conformance.adapters",
    "load_impl": "occsens.conformance.adapters",
    "assert_conforms": "occsens.conformance.run",
    "verify": "occsens.conformance.run",
}

__all__ = [
    "ADAPTERS",
    "DEFAULT_EXAMPLES",
    "PropertyResult",
    "Unsupported",
    "assert_conforms",
    "contract_failures",
    "load_impl",
    "verify",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as exc:
            if exc.name != "hypothesis":
                raise
            raise OcclusionError(
                "occsens.conformance draws its cases with hypothesis, which is not installed "
                "(pip install hypothesis)"
            ) from None
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'occsens.conformance' has no attribute {name!r}")
