"""``python -m fastnum train ...``, the same as the ``fastnum`` command."""

import sys

from .cli import main

sys.exit(main())
