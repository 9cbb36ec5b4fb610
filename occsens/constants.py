"""The package's fixed names and limits, in one module that imports nothing (no torch, no numpy).

The layers that use them import them from here, and so does the command line, which must build its
parser without torch: each value has one home, not a copy per layer.
"""

MAX_SEED = 2**32 - 1  # a training or check seed: numpy's and most tools' seed range
MAX_EPOCHS = 1000  # training epochs
MAX_WIDTH = 256  # channels of the shipped architecture's first layer
FILL_NAMES = ("mean", "blur", "noise")  # fills by name (occsens.engine.fill)
OUTPUTS = ("softmax", "probs", "sigmoid")  # what a model returns, by name (occsens.engine.model)
HTML_NAME = "index.html"  # the page's name in a report folder
JSON_NAME = "report.json"  # the numbers' name beside it
