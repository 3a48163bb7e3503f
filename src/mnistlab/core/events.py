"""A run's statuses and the progress events it sends while it trains: one declaration each.

Events travel as JSON (a worker's stdout, a Ray queue, the lab's server-sent events to the page), so each
is a dataclass with `to_json()`; the pages read the same names from web/static/events.js, which
tests/test_events.py holds against these.
"""

import dataclasses
import enum
import time
import typing


class RunStatus(str, enum.Enum):
    """Where a run stands. A str, so that it is stored, compared and sent as its plain name."""

    QUEUED = "queued"  # a row in the lab's queue, no directory yet
    RUNNING = "running"
    DONE = "done"
    DIVERGED = "diverged"  # stopped at a non-finite loss
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped on purpose (Ctrl+C, a killed worker's run on resume)
    CANCELLED = "cancelled"  # stopped from the lab

    def __str__(self):
        return self.value


# The statuses a run's row can hold (the store checks them): a cancelled queued run is removed, not kept, and a
# cancelled running one ends interrupted.
STORED_STATUSES = tuple(status.value for status in RunStatus if status is not RunStatus.CANCELLED)

# A run in one of these has ended: its record will not change.
FINISHED = frozenset({RunStatus.DONE, RunStatus.DIVERGED, RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.CANCELLED})


class EventKind(str, enum.Enum):
    """What a progress event says."""

    STEP = "step"  # a step within an epoch (at most every few seconds), or "working" while Keras compiles
    EPOCH = "epoch"  # an epoch's row of the history
    STATUS = "status"  # the run's status changed
    SNAPSHOT = "snapshot"  # the lab's stream starts with everything known so far
    END = "end"  # the lab's stream ends: the run has finished

    def __str__(self):
        return self.value


class StepPhase(str, enum.Enum):
    TRAIN = "train"
    VALIDATION = "validation"
    WORKING = "working"  # no callback for a while (compiling, a long call): still at the last step

    def __str__(self):
        return self.value


@dataclasses.dataclass(frozen=True)
class Event:
    """A progress event; `to_json()` is the object that travels, with its "kind"."""

    kind: typing.ClassVar[EventKind]

    def to_json(self) -> dict:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class EpochEvent(Event):
    kind: typing.ClassVar[EventKind] = EventKind.EPOCH
    row: dict  # the history row: epoch, loss, accuracy, val_loss, val_accuracy, seconds
    epochs: int | None
    time: float = dataclasses.field(default_factory=time.time)

    def to_json(self) -> dict:
        return {"kind": self.kind.value, **self.row, "epochs": self.epochs, "time": self.time}


@dataclasses.dataclass(frozen=True)
class StepEvent(Event):
    kind: typing.ClassVar[EventKind] = EventKind.STEP
    phase: StepPhase
    position: dict  # epoch, step (and the running loss and accuracy where Keras gave them)
    epochs: int | None
    steps: int | None
    time: float = dataclasses.field(default_factory=time.time)

    def to_json(self) -> dict:
        return {
            "kind": self.kind.value,
            "phase": self.phase.value,
            **self.position,
            "epochs": self.epochs,
            "steps": self.steps,
            "time": self.time,
        }


@dataclasses.dataclass(frozen=True)
class StatusEvent(Event):
    kind: typing.ClassVar[EventKind] = EventKind.STATUS
    status: RunStatus
    time: float | None = dataclasses.field(default_factory=time.time)
    extra: dict | None = None  # what this change adds: the error, the run it repeats, the run it resumes

    def to_json(self) -> dict:
        values = {"kind": self.kind.value, "status": self.status.value, **(self.extra or {})}
        if self.time is not None:
            values["time"] = self.time
        return values
