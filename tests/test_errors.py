"""A user-facing error crosses a process whole: pickled by Ray (a task's error) or by the serving pipe, it comes back
as the same kind, with the same message and the attributes the front ends read (field, extra, status, headers)."""

import pickle

import pytest

from mnistlab.core import errors
from mnistlab.web.lab.sites import SiteBusy


@pytest.mark.parametrize(
    "error, attributes",
    [
        (errors.MissingExtra("mnistlab serve", "serve"), {"extra": "serve"}),  # its parameters are not its message
        (SiteBusy(), {"http_status": 429}),  # it takes none
        (errors.ConfigError("epochs must be at most 1000", field="epochs"), {"field": "epochs"}),
        (errors.RequestError("the body is over 64 KiB", 413), {"http_status": 413}),
        (errors.QueueFull("the queue is full", retry_after=30), {"headers": {"Retry-After": "30"}}),
        (errors.RunFailed("the run failed", traceback="Traceback ..."), {"traceback": "Traceback ..."}),
        (errors.ImageTooLarge("over 25,000,000 pixels"), {"http_status": 413}),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_an_error_is_pickled_and_rebuilt_whole(error, attributes):
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error) and again.args == error.args
    for name, value in attributes.items():
        assert getattr(again, name) == value, name
    assert (again.exit_code, again.http_status) == (error.exit_code, error.http_status)
