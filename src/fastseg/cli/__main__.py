"""``python -m fastseg.cli``: the ``fastseg`` command."""

from . import entry

entry()
