"""Errors that mean "the user asked for something we cannot do".

Each carries what the front ends need to answer it: `exit_code` for the
command line, `http_status` for the web API. The CLI prints these as one line
and exits with `exit_code`; both web apps answer `{"error": message, "field": name or null}`
with `http_status` (web/errors.py). Anything else is a bug and keeps its traceback.

`MnistlabError` is deliberately not a `ValueError`: code that catches a
library's ValueError must not swallow ours, nor ours theirs.
"""


class MnistlabError(Exception):
    """A user-facing error: the message names the problem and the fix.

    A kind that answers otherwise says so in its class line: `class NotFound(MnistlabError, http_status=404)`.
    """

    exit_code = 2
    http_status = 400

    def __init_subclass__(cls, http_status=None, exit_code=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if http_status is not None:
            cls.http_status = http_status
        if exit_code is not None:
            cls.exit_code = exit_code

    def __reduce__(self):
        # Pickled as what it is, rebuilt without its __init__: a kind's own parameters (MissingExtra's what and
        # extra) are not its message, and an error crosses processes whole (a Ray task's comes back pickled).
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(kind, args, attributes):
    error = kind.__new__(kind, *args)
    error.args = args
    error.__dict__.update(attributes)
    return error


class DataError(MnistlabError):
    """A dataset file is missing, corrupt or of the wrong shape."""


class ConfigError(MnistlabError):
    """A configuration key or value is not valid; `field` names the key at fault where one is (the lab shows the error beside it)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


class DatasetUnavailable(DataError):
    """A dataset is neither cached nor downloadable right now."""


class RunDirError(MnistlabError):
    """A path that should be a run directory is missing or incomplete."""


class StoreError(MnistlabError):
    """The run store cannot be used, or holds no such run."""


class UnknownRun(StoreError, http_status=404):
    """No run has that id (the web APIs answer 404)."""


class NotFound(MnistlabError, http_status=404):
    """A named thing that is not there: a table with no reproduction, a name that is no table (the web APIs answer 404)."""


class MissingExtra(MnistlabError):
    """A command needs an optional dependency group that is not installed."""

    def __init__(self, what, extra):
        # mnistlab is installed from its clone (it is on no package index): the command works there.
        super().__init__(
            f"{what} needs the '{extra}' extra: in your mnistlab clone, pip install -e \".[{extra}]\" (or bash scripts/setup.sh all)"
        )
        self.extra = extra


class ImageError(MnistlabError):
    """An image that cannot be read."""


class NotAnImage(ImageError, http_status=415):
    """A file of no image format mnistlab reads (a text file, a PDF): 415, Unsupported Media Type."""


class CorruptImage(ImageError):
    """A file that begins as an image of a known format but cannot be decoded (truncated, damaged)."""


class ImageTooLarge(ImageError, http_status=413):
    """An image over a reader's limit on pixels or bytes: 413, named with the limit."""


class ImageTooComplex(ImageError, http_status=422):
    """An image whose structure (its PNG chunks, its JPEG's segments or scans) would cost more to read than its reader allows."""


class NoDigit(ImageError, http_status=422):
    """A readable image with nothing to classify."""


class RequestError(MnistlabError):
    """A malformed web request (bad JSON, oversized body, ...)."""

    def __init__(self, message, http_status=400):
        super().__init__(message)
        self.http_status = http_status


class QueueFull(MnistlabError, http_status=429):
    """The lab's queue holds as many runs as it may: try again later (429, with Retry-After)."""

    def __init__(self, message, retry_after=60):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class RunFailed(MnistlabError, exit_code=1):
    """A training in a worker process failed; `traceback` holds the worker's when it was a bug."""

    def __init__(self, message, traceback=None):
        super().__init__(message)
        self.traceback = traceback


class AlreadyDone(MnistlabError):
    """The same run (config, dataset, backend, seed) has already finished."""


# The servers' refusals (serving/batching.py, serving/workers.py): busy now, or replaced by a newer ask.


class ServerBusy(MnistlabError, http_status=503):
    """More requests are waiting than the server holds: try again shortly."""

    retry_after_seconds = 1


class ExplainBusy(ServerBusy):
    """Too many clients wait for an explanation."""

    retry_after_seconds = 2


class Superseded(MnistlabError, http_status=409):
    """A waiting explanation replaced by the same client's newer one."""
