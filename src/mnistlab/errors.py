"""Errors that mean "the user asked for something we cannot do".

The CLI prints these as one line and exits non-zero; anything else is a bug
and keeps its traceback.
"""


class MnistlabError(ValueError):
    """A user-facing error: the message names the problem and the fix."""


class DataError(MnistlabError):
    """A dataset file is missing, corrupt or of the wrong shape."""


class ConfigError(MnistlabError):
    """A configuration key or value is not valid."""


class DatasetUnavailable(DataError):
    """A dataset is neither cached nor downloadable right now."""
