"""``python -m occsens.cli``: the same as the ``occsens`` command."""

import sys

from occsens.cli import main

sys.exit(main())
