"""``python -m fastseg``: the ``fastseg`` command."""

from .cli import entry

entry()
