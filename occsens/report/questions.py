"""The question the report answers, as data: the asker's four questions and what their notebook printed.

Source: the question in ``shared/seed/question.txt`` (the asker's words, quoted in one line each) and
``shared/seed/notes.md`` (what the widely copied notebook behind it computes). The report knows no
dataset: the printout is in class ids, as the asker printed it, and the command line passes it with
CIFAR-10 images, whose class ids it refers to.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Question:
    """One of the four questions: its anchor, a short title and the asker's words in one line."""

    id: str
    title: str
    asked: str


QUESTIONS: tuple[Question, ...] = (
    Question(
        "q1",
        "Doubt 1: np.amax(out) or np.amax(pred)?",
        "“Since out is in the loop, np.amax(out) will return the maximum value of the last iteration. "
        "Should not this be replaced with np.amax(pred)?”",
    ),
    Question(
        "q2",
        "Why do other classes fill the class map?",
        "“The model predicts class 0 (when occluded) the most (Count is 37), but the model predicts "
        "class 8 when not occluded. Why so?”",
    ),
    Question(
        "q3",
        "The image minus the patch, or the patch alone?",
        "“Does the model see the entire image except the grey patch, or only the image under the grey "
        "patch? Which is correct?”",
    ),
    Question(
        "q4",
        "Greyscale or colour?",
        "“What kind of image is better to train the model? Greyscale image or the colour (3 channel: "
        "RGB) image?”",
    ),
)


@dataclass(frozen=True)
class Printout:
    """What the asker's notebook printed for their ship (class ids as printed; ``question.txt``)."""

    true_class: int
    predicted: int
    prob: float  # printed with np.amax(pred), the asker's fix of doubt 1
    counts: dict[int, int] = field(hash=False)  # "Class id k: Count n", in the printed order
    size: int  # the notebook's grid step

    @property
    def positions(self) -> int:
        return sum(self.counts.values())

    @property
    def takeover(self) -> int:
        """The class that won most windows although it is not the predicted one (the asker's class 0)."""
        others = {k: v for k, v in self.counts.items() if k != self.predicted}
        return min(others, key=lambda k: (-others[k], k))


# Correct class [8], predicted 8 (prob 0.9992953538894653), and the printed counts, which add up to
# the 64 positions of an 8x8 grid (size 4 on a 32x32 image).
ASKER = Printout(
    true_class=8,
    predicted=8,
    prob=0.9992953538894653,
    counts={8: 8, 0: 37, 3: 2, 1: 13, 2: 4},
    size=4,
)

# The notebook, introduced once in the report (facts from ``shared/seed/notes.md``).
NOTEBOOK_PRINT = "print('Predicted class: {} (prob: {})'.format(np.argmax(pred), np.amax(out)))"
