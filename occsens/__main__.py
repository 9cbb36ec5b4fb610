"""``python -m occsens``: the same as the ``occsens`` command."""

import sys

from occsens.cli import main

sys.exit(main())
