"""What each check must meet, and why: the measured thresholds and the named pass conditions.

A check measures a value; whether that value passes is decided by a separate, named ``Condition``
(``occsens.checks.results``) whose threshold and reason are the constants below. Each threshold's
comment says what was measured to put it where it is; each condition's ``reason`` says it in a sentence
for the table and the report.
"""

from __future__ import annotations

from typing import Any

from occsens.checks.results import Clause, Condition

# --------------------------------------------------------------------------- thresholds and their reasons

# Randomisation. Adebayo et al. (2018) judge the cascade by eye and by rank correlation, with no pass
# threshold. We require the fully randomised model's map to keep at most half of the trained map's rank
# order: mean |Spearman rho| <= 0.5, i.e. at most 25% of the rank variance shared. A map that is a
# function of the image alone (an edge detector) scores exactly 1.0 at every step, so the verdict on
# such a map does not hinge on where in (0, 1) the line is drawn. Chance level is far below the line:
# two unrelated maps of 64 windows score a mean |rho| of about 0.1 (0.05-0.2 measured between small
# random nets on noise images; 0.2-0.35 with only 16 windows per image).
RANDOMISATION_MAX_RHO = 0.5
RANDOMISATION_STEPS = 6  # points on the cascade (the last one: every layer re-initialised)
RANDOMISATION_SAMPLES = 8  # at most this many images (each step is one occlusion run per image)

# Map-against-chance comparisons (patch-only/background-only, deletion, insertion) all ask the same
# question: is the map's ordering better than a random ordering? The map's statistic must lie at least
# Z_MIN standard deviations of the random orderings beyond their mean. Under the null hypothesis (the map
# orders no better than chance) the map is one more draw from that distribution and passes with
# probability ~2.3% (normal tail), ~3.8% with the spread estimated from 10 orders (t, 9 d.o.f.).
Z_MIN = 2.0
TOP_FRACTION = 0.1  # "most/least important windows": the top/bottom 10% of windows (at least one)
NULL_DRAWS = 2000  # random window sets for the patch check's null distribution (no model calls)
RANDOM_ORDERS = 10  # random tile orders for deletion/insertion (the issue asks for >= 10)
CURVE_STEPS = 16  # deletion/insertion curves: 0, 1/16, ..., 16/16 of the image (at most one step per tile)
# Deletion and insertion remove patch-sized tiles (each scored by the map's mean over it), not single
# pixels. Measured on a provisional default model (8 default samples, grey fill): with single-pixel orders the
# occlusion map's deletion AUC was *higher* than random (z = -2.2) and its insertion AUC 21 sd above:
# scattered grey pixels hurt the model more than compact regions whatever they show, so pixel-level
# random orders measure the shape of the removal. Samek et al. (2017, region perturbation) compare
# orders of regions against random orders of the same regions for this reason.

# Leakage. If the class map's changes are explained by the image, a window's replacement class is
# whatever the rest of the image supports next, which coincides with the class of the fill alone only by
# chance (about 1 in K-1). FILL_EXPLAINED_MAX: when more than half of the windows whose class changed
# take the class the model gives the fill alone, the fill decides the class map more than everything
# else together does (majority rule). SINK_FRACTION_MAX: when one class that is not the image's own wins
# more than half of all windows, pooled over images of other classes, the class map of those images is
# dominated by one class that none of them shows: a sink, not a reading of each image.
FILL_EXPLAINED_MAX = 0.5
SINK_FRACTION_MAX = 0.5
LEAKAGE_FILLS: tuple[tuple[str, Any], ...] = (
    ("grey", 0.5),
    ("mean", "mean"),
    ("blur", "blur"),
    ("noise", "noise"),
)

# Determinism. Different batch compositions change the order of float32 sums inside convolutions, which
# moves a CIFAR ResNet's probabilities by ~1e-7 to 1e-6 (2.4e-7 measured on the shipped default model);
# 1e-4 leaves two orders of magnitude for other models and is still 40x below the smallest difference a
# heatmap shows (a 256-level colour scale over [0, 1] steps by ~4e-3). A forward that draws random
# numbers moves probabilities by far more than that.
DETERMINISM_TOL = 1e-4
DETERMINISM_SAMPLES = 2
DETERMINISM_BATCH = 5  # an odd batch size, so chunks split windows differently from the default


# --------------------------------------------------------------------------- conditions (named constants)

RANDOMISATION = Condition(
    "map decorrelates from the trained map once the model is randomised",
    (Clause("final_abs_rank_correlation", "<=", RANDOMISATION_MAX_RHO),),
    "Adebayo et al. (2018) set no threshold; at |rho| <= 0.5 the fully randomised model's map shares at "
    "most 25% of the trained map's rank variance, while a map computed from the image alone keeps rho = 1.",
)
BACKGROUND_ONLY = Condition(
    "hiding the most important windows lowers the target probability, more than random windows",
    (Clause("top_mean_drop", ">", 0.0), Clause("z", ">=", Z_MIN)),
    "The top windows' mean drop must be positive (the probability falls) and 2 standard deviations above "
    "random sets of as many windows: under chance a map passes with probability ~2.3%.",
)
PATCH_ONLY = Condition(
    "the most important windows shown alone keep more of the target than the least important ones",
    (Clause("z", ">=", Z_MIN),),
    "Top-minus-bottom difference of the patch-only target probability, 2 standard deviations above random "
    "pairs of window sets: under chance a map passes with probability ~2.3%.",
)
DELETION = Condition(
    "filling the image tile by tile in the map's order lowers the target faster than random orders",
    (Clause("z", ">=", Z_MIN),),
    "RISE (Petsiuk et al. 2018) compares deletion AUCs; the map's AUC must lie 2 standard deviations of "
    f"{RANDOM_ORDERS} random orders below their mean: a map no better than chance passes ~2-4% of the time.",
)
INSERTION = Condition(
    "restoring the image tile by tile in the map's order raises the target faster than random orders",
    (Clause("z", ">=", Z_MIN),),
    "RISE (Petsiuk et al. 2018) compares insertion AUCs; the map's AUC must lie 2 standard deviations of "
    f"{RANDOM_ORDERS} random orders above their mean: a map no better than chance passes ~2-4% of the time.",
)
FILL_CLASS = Condition(
    "replacement classes are not the class of the fill alone",
    (Clause("fill_explained_share", "<=", FILL_EXPLAINED_MAX),),
    "Image-driven replacements hit the fill's own class by chance (~1/(K-1)); above one half, the fill "
    "explains more of the class map's changes than the image does (ROAD, Rong et al. 2022: the occluder "
    "leaks class information).",
)
SINK_CLASS = Condition(
    "no single sink class wins most windows across images of other classes",
    (Clause("sink_fraction", "<=", SINK_FRACTION_MAX),),
    "If one class wins more than half of all windows of images that are not of that class, the class map "
    "reads the occluder, not each image.",
)
DETERMINISM = Condition(
    "same probabilities for repeated runs and different batch sizes",
    (Clause("max_diff_repeat", "<=", DETERMINISM_TOL), Clause("max_diff_batch", "<=", DETERMINISM_TOL)),
    "float32 summation order moves probabilities by ~1e-6 between batch compositions; 1e-4 leaves 100x "
    "headroom and is 40x below the smallest step a heatmap's colour scale shows.",
)
CHECK_RAN = Condition(
    "the check runs to completion",
    (),
    "A check that cannot run has not shown that the map can be trusted.",
)
