"""The occlusion engine: one plan of windows, one pass over the model, one tensor of probabilities.

It imports nothing from the rest of occsens but the error type (``occsens.errors``): a model,
its images and the settings come in as data. It sets nothing process-wide (the allocator tuning in
``occsens._alloc`` is for occsens's own command-line and benchmark processes only).

What occsens computes, stated once (every sentence here has a test in ``tests/engine``):

* **Windows.** A window is a ``patch`` = (height, width) rectangle. Along each axis its
  top-left corners sit at 0, s, 2s, ... for stride s, as long as the window fits inside
  the image; where the last one does not reach the far border, one more window is added
  flush with the border. So every window is full-size, lies inside the image, and every
  pixel is covered at least once. The windows form an R x C grid (R positions down,
  C across). Rejected alternatives: *clipping* windows at the border (Zeiler & Fergus'
  description; the notebook; Captum 0.9, whose corners go on at 0, s, 2s, ... until the
  image is covered, the last window cut at the border, ``tests/engine/test_captum_borders.py``)
  makes border windows smaller, so they hide less and look less important for no reason
  about the image; *dropping* the remainder leaves the last rows or columns never
  occluded; *padding* the image (MONAI) occludes pixels that do not exist.
* **Fill.** Inside the window the input is replaced by the fill, in pixel space, before
  whatever normalisation the model does inside its ``forward``: a number (e.g. 0.5,
  mid grey), one number per channel, a baseline image, ``"mean"`` (each image's own
  per-channel mean), ``"blur"`` (a Gaussian blur of the image, sigma ``BLUR_SIGMA``),
  ``"noise"`` (uniform noise in [0, 1], seeded, so reruns agree), or a callable
  ``fill(images, mask) -> images`` whose output is used where ``mask`` is True. Outside
  the window the pixels are the image's own, bit for bit: **the model sees the image
  minus the window**. With ``reveal=True`` it is the other way round: the model sees
  only the window, and everything else is filled (the patch-only view).
* **Outputs.** ``clean_probs`` is the softmax of the unoccluded image, ``probs`` the
  softmax at every grid position. The ``target`` is each image's clean predicted class
  unless given. ``heatmap`` is the target's probability per position (low = the window
  hid something the model needed), ``drop = clean - heatmap`` (positive = the
  probability fell), ``class_map`` the most probable class per position,
  ``class_counts`` how many positions each class wins. ``attribution()`` spreads the
  drop back to pixels: each pixel gets the mean drop over the windows that cover it
  (Captum's ``Occlusion`` definition). All of them are derived from ``probs`` and
  ``clean_probs`` on demand.
* **Model.** Run in eval mode under ``torch.inference_mode()``; each module's training
  flag is put back afterwards. A model handed over in training mode is reported with a
  warning (dropout and batch statistics would make the map random).
* **Arguments.** Every argument is checked before any work (``occsens.engine.validate``): a
  bad one raises one ``OcclusionError`` that names it, quotes the value and says what is
  valid. Models run in float32: a float16, bfloat16, float64 or meta-device model is
  refused, never converted; float16 and bfloat16 images are converted to float32 (exact).
  A device must exist on this machine. An exception from the user's own code (the model's
  forward, a fill callable, an ``output`` function) comes back as an ``OcclusionError``
  naming that callable, and a fill callable's NaN or out-of-range values are blamed on it.
* **Engines.** ``engine="brute"`` runs every occluded copy through the model. The
  incremental engine (``occsens.engine.incremental``) recomputes each layer only where the window
  changed it, and agrees with brute force within ``engine_tolerance`` in probability: float32
  rounding, ``ROUNDING_SLACK * 2**-24 * layers * max(1, max |logit|)``, at least ``ENGINE_TOLERANCE``
  (1e-5); both engines are that close to a float64 reference (``tests/engine/test_float64_reference.py``).
  ``"auto"`` uses it only where that is proved and checked, on every call: (1) every layer the
  model calls must be one whose arithmetic the walk states (``occsens.engine.receptive.refusal``:
  known classes or subclasses adding only ``__init__``, or another library's layer checked against
  its own forward when first met, such as timm's ``BatchNormAct2d``; unpatched, no hooks of any kind
  on the layer or globally, no ``__torch_function__``/dispatch mode, no autocast); (2) the walk's own
  clean pass must reproduce the model's own clean forward; (3) two windows per call, the
  top-left one of the first image (borders) and the centre one of the last, are also run by
  brute force and must agree. A model built of ``nn.Sequential``, ``Residual`` and known layers
  is walked as it is; any other (torchvision's ResNets, VGGs, MobileNetV2, a hand-written
  ``forward``) is read from its real ``forward`` with ``torch.fx`` (``occsens.engine.graph``:
  its Python runs once per call on symbolic values, in eval mode) and rebuilt as such a tree
  sharing the model's own layers; a forward the trace cannot follow (data-dependent control
  flow), a function the walk has no rule for, or an in-place write whose input is read again
  is a failure of (1). Where (1) fails, "auto" runs brute force silently (it is exact, and the
  user did not ask for the other engine) and ``res.engine`` reads ``"brute (incremental not used:
  ...)"`` naming the layer; where (2) or (3) fails, the whole call reruns by brute force, one
  warning names the check, and ``res.engine`` reads ``"brute (fallback: ...)"``.
  What the guard cannot see: a change the static check misses (for example a patched
  ``torch.nn.functional`` function, or a weight tensor that changes between layers' calls)
  and that leaves the clean output and both checked windows within the tolerance while moving
  other windows: possible in principle for code that treats particular positions specially.
  The checks cost about three image forwards per call (the model's own clean forward and the
  two windows).
* **Threads.** Several threads may call ``occlude`` on one model at once: no hooks are put on
  the model, and mode and TF32 changes are reference-counted (``eval_mode``, ``full_float32``),
  so each call sees eval mode throughout and the caller's flags come back when the last call
  ends. Not safe: training or changing the model in another thread meanwhile; the TF32 flags
  are process-wide, so other threads' CUDA work also runs without TF32 while occsens runs. On the
  CPU the incremental engine runs its chunks on one worker thread per torch thread, each with one
  intra-op thread (a machine with a busy process beside it then loses one worker, not every
  kernel's barrier); torch's default thread count for threads started meanwhile reads 1 until the
  call ends.
"""

from occsens.engine.fill import BLUR_SIGMA, FILL_NAMES, NOISE_SEED, gaussian_blur, resolve_fill
from occsens.engine.layers import Residual, register_pointwise
from occsens.engine.model import (
    as_images,
    as_model,
    default_batch_size,
    eval_mode,
    full_float32,
    progress_bar,
)
from occsens.engine.occlusion import Occlusion, notebook_occlude, occlude
from occsens.engine.plan import NOTEBOOK_SCALE, Plan, notebook_plan, plan_for, sliding_plan
from occsens.engine.schedule import ENGINE_TOLERANCE, ENGINES, engine_tolerance
from occsens.engine.store import Runs

__all__ = [
    "BLUR_SIGMA",
    "ENGINES",
    "ENGINE_TOLERANCE",
    "FILL_NAMES",
    "NOISE_SEED",
    "NOTEBOOK_SCALE",
    "Occlusion",
    "Plan",
    "Residual",
    "Runs",
    "as_images",
    "as_model",
    "default_batch_size",
    "engine_tolerance",
    "eval_mode",
    "full_float32",
    "gaussian_blur",
    "notebook_occlude",
    "notebook_plan",
    "occlude",
    "plan_for",
    "progress_bar",
    "register_pointwise",
    "resolve_fill",
    "sliding_plan",
]
