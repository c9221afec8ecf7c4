"""``python -m fastseg.cli``: the ``fastseg`` command."""

import sys

from . import main

sys.exit(main())
