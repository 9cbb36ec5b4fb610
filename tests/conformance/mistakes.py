"""A plain occlusion loop, correct by default, with one planted mistake on request.

Written from the contract alone (``occsens.conformance``'s docstring), not from occsens' engine or
the conformance package's closed form: full-size windows at 0, s, 2s, ... plus one flush with the
far border, the window set to the fill, drops of the clean class's softmax probability from its
clean value, each pixel the mean over the windows covering it.
"""

from __future__ import annotations

import functools

import torch

MISTAKES = (
    "stale clean prediction",
    "wrong target",
    "fill ignored",
    "stride ignored",
    "one-pixel shift",
    "transposed grid",
    "batch mates swapped",
    "unnormalised scores",
    "5x square",
)


def starts(length: int, size: int, step: int) -> list[int]:
    found = list(range(0, length - size + 1, step))
    if found[-1] + size < length:
        found.append(length - size)
    return found


def occlusion(model, images, *, patch, stride, fill, mistake: str = ""):
    """[N, H, W] float64 attribution; ``mistake`` (one of ``MISTAKES``) plants one bug."""
    assert mistake in ("", *MISTAKES)
    (ph, pw), (sh, sw) = patch, stride
    if mistake == "transposed grid":
        ph, pw, sh, sw = pw, ph, sw, sh
    if mistake == "stride ignored":
        sh, sw = ph, pw
    n, _, h, w = images.shape
    score = (lambda z: z) if mistake == "unnormalised scores" else (lambda z: torch.softmax(z, dim=1))
    with torch.no_grad():
        clean = score(model(images)).double()
        target = clean.argmax(dim=1)
        if mistake == "wrong target":  # the notebook's bug 2: the class of another sample
            target = target.roll(1)
        rows = torch.arange(n)
        windows, occluded = [], []
        for top in starts(h, ph, sh):
            for left in starts(w, pw, sw):
                t0, l0, t1, l1 = top, left, top + ph, left + pw
                if mistake == "one-pixel shift":  # filled one row lower than where its drop is credited
                    t0, t1 = t0 + 1, t1 + 1
                if mistake == "5x square":  # the notebook's square, 2 patches on every side
                    t0, l0, t1, l1 = t0 - 2 * ph, l0 - 2 * pw, t1 + 2 * ph, l1 + 2 * pw
                x = images.clone()
                x[:, :, max(t0, 0) : t1, max(l0, 0) : l1] = 0.0 if mistake == "fill ignored" else fill
                windows.append((top, left))
                occluded.append(score(model(x)).double())
        reference = clean[rows, target]
        if mistake == "stale clean prediction":  # measured from the last occluded input, not the image
            reference = occluded[-1][rows, target]
        total = torch.zeros(n, h, w, dtype=torch.float64)
        count = torch.zeros(h, w, dtype=torch.float64)
        for (top, left), probs in zip(windows, occluded, strict=True):
            total[:, top : top + ph, left : left + pw] += (reference - probs[rows, target]).view(n, 1, 1)
            count[top : top + ph, left : left + pw] += 1
    result = total / count
    return result.flip(0) if mistake == "batch mates swapped" else result


correct = occlusion
WRONG = {m: functools.partial(occlusion, mistake=m) for m in MISTAKES}
