"""Where a finding changes its words: every threshold the report's sentences use, each with its reason.

A sentence of the report never states a conclusion its own numbers do not support: each conditional
sentence in ``occsens.report.findings`` and ``occsens.report.answers`` picks its wording by comparing
the numbers it cites with one of the constants below, and nowhere else is a number written into a
choice of words. ``tests/report/test_findings.py`` and ``tests/report/test_answers.py`` feed hand-made
numbers at and around each of them.

Comparisons are made on the numbers as the sentence prints them (probabilities to four decimals,
accuracy points to one), so a printed number never sits on the wrong side of its own threshold.
"""

from __future__ import annotations

# A window "matters" when hiding it lowers the target's probability by more than this. 0.1 is a tenth
# of the probability scale: on the heatmap's 0..1 colour bar it is a step a reader sees at a glance,
# and it is the drop above which the report counts "windows that matter".
IMPORTANT_DROP = 0.1

# Below this largest drop a map is flat: no window changes the answer by a visible amount. One
# percentage point is under three of the 256 steps of the heatmap's colour scale (a step is ~0.004),
# so nothing on such a map can be told from noise by eye; "the evidence is spread out" would claim a
# structure the map does not show (an untrained model's map has a largest drop of ~0.0000).
FLAT_DROP = 0.01

# When the clean probability itself is at most IMPORTANT_DROP, no window can lower it by more than
# IMPORTANT_DROP: the absence of windows that matter then says nothing about where the evidence is.
# (The constant is IMPORTANT_DROP itself; it is named here so the reason is read in one place.)
WEAK_CLEAN = IMPORTANT_DROP

# The occlusion class map (image minus the window) and the patch-only class map (only the window)
# "agree" at a window when they name the same class. If the model saw only the patch, the two maps
# would be the same map and agree at every window; at 90% agreement or more they differ at fewer than
# one window in ten (at most 6 of an 8x8 grid), too few to tell the two readings apart from the class
# maps alone. Below it, the maps differ at enough windows to say the occlusion map is not the map of
# the patch alone.
SAME_MAP_SHARE = 0.9

# A replacement class is "spread across" the image when the box around the windows it wins covers at
# least half the image's pixels, and "within" a region otherwise: a box over half the image is no
# longer a place a reader can point to.
SPREAD_AREA_SHARE = 0.5

# The notebook's square greys 25 times the area of the cell it draws (5 x 5). Its size is named the
# main cause of the other classes in its class map when it makes the clean class lose at least twice
# as many positions as true windows do: less than that, and what the square covers explains the
# class map no more than the grid of windows itself does.
SQUARE_SIZE_FACTOR = 2.0

# "Most" (the runner-up takes most lost positions; most of a gap on one class) is a strict majority:
# ``occsens.report.consistency.MOST_SHARE``, with the claims the sanity checks can veto.
