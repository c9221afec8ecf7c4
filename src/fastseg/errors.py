"""Errors a user can act on: the CLI prints their message as one line and exits 2."""


class FastsegError(ValueError):
    """Something about the input or the request is wrong; the message says what to do."""


class DataError(FastsegError):
    """The data cannot be used as given (missing file or column, non-numeric, NaN, too few rows)."""


class ModelFileError(FastsegError):
    """A model file cannot be read (not JSON, another format version, wrong contents)."""


class DataWarning(UserWarning):
    """Something about the data the user should know, though the fit went on (the CLI prints
    it as a note)."""
