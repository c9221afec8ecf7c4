"""The installed fastseg's version (one place, so no module imports the package root for it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fastseg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
