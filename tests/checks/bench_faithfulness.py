"""Deletion/insertion on real images at seeds 0-9: the real map's verdict and random maps' false passes.

Not a test (pytest does not collect it: minutes of CPU per seed). Run from the repository root:

    python tests/checks/bench_faithfulness.py [--seeds 0-9] [--maps 40] [--before]

For each seed it runs the faithfulness check exactly as ``occsens check`` does by default (the shipped
default model, the 8 default samples, the other 92 embedded samples as ``more_images``, patch 4, grey
fill) and prints the real map's verdicts, mean share, interval, images used and measured power. Then it
judges ``--maps`` random tile maps with the same rule: a random tile map's order is a uniformly random
order of the tiles, so random order k of the run plays a random map against the other 99 orders as its
null (leave one out, no extra model calls), at every look the stages allow. A random map still
inconclusive at the last look the run computed (the real map decided there) is counted as not passing
and listed apart: at later looks its interval would only narrow around its mean.

``--before`` runs the check as it was before issue 23 (git ``main`` at dc1ac1c, the z-test against 10
random orders on the 8 samples) from an export of that commit's ``occsens`` package put first on
``PYTHONPATH`` (``git archive dc1ac1c occsens | tar -x -C DIR``, then ``PYTHONPATH=DIR``), for the real
map at each seed; its random-map rate is read off 40 random orders judged by the old rule on one set of
curves per seed (``_before_random``).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def _inputs() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, list[int], list[int]]:
    from occsens.cifar.models import load_model
    from occsens.cifar.samples import DEFAULT_SAMPLES, load_samples

    samples = load_samples()
    images = torch.as_tensor(np.array(samples.images), dtype=torch.float32) / 255
    indices = [int(i) for i in samples.indices]
    shown = [indices.index(i) for i in DEFAULT_SAMPLES]
    rest = [k for k in range(len(indices)) if k not in shown]
    return (
        load_model("default"),
        images[shown],
        images[rest],
        [indices[k] for k in shown],
        [indices[k] for k in rest],
    )


def after(seed: int, maps: int) -> dict:
    from occsens.checks import faithfulness, inference
    from occsens.checks.conditions import BEAT_MIN
    from occsens.checks.names import INCONCLUSIVE, PASS
    from occsens.checks.run import run_checks

    model, shown, more, shown_ids, more_ids = _inputs()
    captured: dict = {}
    original = faithfulness._collect

    def keep(run, **kwargs):  # noqa: ANN001, ANN202 - a pass-through that keeps the curves
        out = original(run, **kwargs)
        captured["evidence"], captured["used"] = out[0], out[2]
        return out

    faithfulness._collect = keep
    try:
        results = run_checks(
            model,
            shown,
            sample_ids=shown_ids,
            more_images=more,
            more_ids=more_ids,
            checks=["faithfulness"],
            seed=seed,
        )
    finally:
        faithfulness._collect = original
    evidence, used = captured["evidence"], captured["used"]
    row: dict = {"seed": seed, "used": used}
    for r in results:
        key = r.name.split(": ")[1]
        row[key] = (
            r.verdict,
            r.value["mean_share"],
            r.value["share_low"],
            r.value["share_high"],
            r.power,
            r.value["wilcoxon_p"],
        )
    looks = [s for s in evidence.stages if s <= used]
    for key, curves, sign in (("deletion", evidence.deletion, -1.0), ("insertion", evidence.insertion, 1.0)):
        aucs = sign * faithfulness._auc(curves[:, 1:], evidence.fractions)  # [N, R] random orders only
        passed = undecided = 0
        for k in range(maps):
            null = np.delete(aucs, k, axis=1)
            verdict = INCONCLUSIVE
            for n in looks:
                share = inference.beaten_share(aucs[:n, k], null[:n])
                interval = inference.mean_interval(share, evidence.confidence).clipped(0.0, 1.0)
                verdict = inference.decide(interval, BEAT_MIN)
                if verdict != INCONCLUSIVE:
                    break
            passed += verdict == PASS
            undecided += verdict == INCONCLUSIVE
        row[f"{key}_random_pass"] = passed
        row[f"{key}_random_undecided"] = undecided
    return row


def before(seed: int) -> dict:
    """The real map under the check as it was (the old package must come first on sys.path)."""
    from occsens.checks.run import run_checks

    model, shown, _, shown_ids, _ = _inputs()
    results = run_checks(model, shown, sample_ids=shown_ids, checks=["faithfulness"], seed=seed)
    return {r.name.split(": ")[1]: (r.verdict, r.value["z"]) for r in results} | {"seed": seed}


def _before_random(seed: int, maps: int) -> dict:
    """The old rule on random maps: z of a random order's mean AUC over the 8 images against 10 other
    random orders' (leave one out over 10 + maps orders of one set of curves, old 16-step curves)."""
    from occsens.checks.faithfulness import _auc, _curve_probs, _tiles  # the old module
    from occsens.checks.run_state import CheckRun
    from occsens.checks.stats import z_scores
    from occsens.engine import resolve_fill

    model, shown, _, shown_ids, _ = _inputs()
    run = CheckRun(model, shown, None, shown_ids, 4, None, 0.5, None, seed, None)
    rng = np.random.default_rng([seed, 99])
    tiles = _tiles((32, 32), (4, 4))
    counts = torch.as_tensor(np.round(np.linspace(0, 64, 17)).astype(np.int64))
    fill = resolve_fill(0.5, shown)
    dels, inss = [], []
    for i in range(len(shown)):
        orders = np.stack([rng.permutation(64) for _ in range(10 + maps)])
        d, ins = _curve_probs(run, i, orders, tiles, counts, fill)
        dels.append(_auc(d))
        inss.append(_auc(ins))
    out = {"seed": seed}
    for key, aucs, sign in (
        ("deletion", np.stack(dels).mean(0), -1),
        ("insertion", np.stack(inss).mean(0), 1),
    ):
        null = aucs[:10]
        out[f"{key}_random_pass"] = sum(
            z_scores(sign * aucs[10 + k], sign * null)[0] >= 2.0 for k in range(maps)
        )
    return out


def seed_spread(path: str) -> None:
    """From an ``occsens check --json`` file: how far the seed (which only redraws the random orders) can
    move each faithfulness verdict. Each image's share is an average over RANDOM_ORDERS independent
    random orders, so between seeds it varies with variance p(1 - p) / R; the mean over n images by the
    square root of the sum over n^2. Prints that standard error beside the gap between the interval's
    nearer end and the line."""
    import json

    from occsens.checks.conditions import BEAT_MIN, RANDOM_ORDERS

    for item in json.loads(open(path).read()):
        if not item["name"].startswith("faithfulness"):
            continue
        share = np.array(item["details"]["share_per_sample"])
        se = float(np.sqrt((share * (1 - share)).sum() / RANDOM_ORDERS) / len(share))
        v = item["value"]
        gap = v["share_low"] - BEAT_MIN if item["verdict"] == "pass" else BEAT_MIN - v["share_high"]
        print(
            f"{item['name']}: {item['verdict']} on {len(share)} images, mean share {v['mean_share']:.3f} "
            f"[{v['share_low']:.3f}, {v['share_high']:.3f}], gap to the line {gap:.3f}; seed-to-seed "
            f"standard error of the mean share {se:.4f}: the gap is {gap / se:.1f} standard errors"
        )


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-9", type=_seeds)
    parser.add_argument("--maps", default=40, type=int)
    parser.add_argument("--before", action="store_true")
    parser.add_argument("--spread-from", metavar="CHECKS_JSON", help="only the seed spread, from --json")
    args = parser.parse_args()
    if args.spread_from:
        seed_spread(args.spread_from)
        return
    torch.set_num_threads(2)
    for seed in args.seeds:
        start = time.perf_counter()
        if args.before:
            row = before(seed) | (_before_random(seed, args.maps) if args.maps else {})
        else:
            row = after(seed, args.maps)
        print(row | {"seconds": round(time.perf_counter() - start)}, flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
