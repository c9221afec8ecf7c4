"""``python -m fastseg``: the ``fastseg`` command."""

import sys

from .cli import main

sys.exit(main())
