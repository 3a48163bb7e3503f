"""The Keras callbacks of a run's training: each epoch's row (to the recorder, and as a progress event), and
where the run is within an epoch (progress events for a watcher such as the lab, at most every PROGRESS_SECONDS)."""

import math
import threading
import time

from mnistlab.core import events

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


PROGRESS_SECONDS = (
    1.0  # within an epoch, at least this long between two progress events (the lab asks for one every 2 s at most)
)
# Keras calls back once per call of its compiled step, which runs up to 32 steps: for a CNN on a
# CPU that is seconds. Where progress is asked for, a call runs at most this many steps.
PROGRESS_STEPS_PER_EXECUTION = 8


def epoch_callback(recorder, progress=None):
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        """Hands each epoch's row to the recorder (and to `progress`, as {"kind": "epoch", ...}) and stops on a non-finite loss."""

        def __init__(self):
            super().__init__()
            self.rows = []
            self.diverged_at = None
            self._started = None

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            row = {
                "epoch": epoch + 1,
                **{key: float(logs[key]) if key in logs else None for key in HISTORY_KEYS},
                "seconds": round(time.perf_counter() - self._started, 4),
            }
            self.rows.append(row)
            recorder.epoch(row)
            if progress is not None:
                progress(events.EpochEvent(row, self.params.get("epochs")).to_json())
            if not math.isfinite(row["loss"]):
                self.diverged_at = epoch + 1
                self.model.stop_training = True

    return EpochRecorder()


class _StepClock:
    """Where a run is within its epoch, and whether it is time to say so (at most every PROGRESS_SECONDS).

    Plain Python, apart from Keras: `step_callback`'s callback and its timer thread both ask it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._told = False  # the run's first step is told at once: a watcher sees it move as soon as it does
        self.position = {"epoch": 1, "step": 0}

    def restart(self, epoch=None):
        with self._lock:
            if epoch is not None:
                self.position = {"epoch": epoch, "step": 0}
            self._last = time.monotonic()

    def step(self, phase, batch, logs):
        """The position to tell after BATCH of PHASE ("train" or "validation"), or None when it is too soon."""
        with self._lock:
            now = time.monotonic()
            if self._told and now - self._last < PROGRESS_SECONDS:
                return None
            self._last, self._told = now, True
            if phase == "validation":
                return {**self.position, "step": batch + 1}
            losses = {key: float(logs[key]) for key in ("loss", "accuracy") if key in (logs or {})}
            self.position = {"epoch": self.position["epoch"], "step": batch + 1, **losses}
            return self.position

    def silent_for_long(self):
        """The last position when nothing has been told for PROGRESS_SECONDS (else None), and the clock restarted."""
        with self._lock:
            if time.monotonic() - self._last < PROGRESS_SECONDS:
                return None
            self._last = time.monotonic()
            return self.position


def step_callback(progress):
    """A callback telling `progress` the step reached within an epoch, with the running loss and accuracy,
    at most every PROGRESS_SECONDS ({"kind": "step", "phase": "train" or "validation", ..., "time": POSIX seconds}).

    Keras calls back nothing while it compiles the step (seconds, on the first call) or runs one long call
    of it: a timer then says the run is still at its last step ("phase": "working"), so that progress
    comes at least every 2 s whatever the model. Its own class, added only where someone listens: a
    batch hook makes Keras call back every step.
    """
    import keras

    class StepProgress(keras.callbacks.Callback):
        async_safe = True  # it only reads the logs: Keras may keep dispatching steps asynchronously

        def __init__(self):
            super().__init__()
            self._clock = _StepClock()
            self._stop = threading.Event()

        def on_train_begin(self, logs=None):
            self._clock.restart()
            threading.Thread(target=self._beat, name="mnistlab-progress", daemon=True).start()

        def on_train_end(self, logs=None):
            self._stop.set()

        def on_epoch_begin(self, epoch, logs=None):
            self._clock.restart(epoch + 1)

        def on_train_batch_end(self, batch, logs=None):
            self._send("train", self._clock.step("train", batch, logs))

        def on_test_batch_end(self, batch, logs=None):
            # Validation at the epoch's end: its steps are progress too (fit's own; the final test evaluation comes after the last epoch).
            self._send("validation", self._clock.step("validation", batch, logs))

        def _beat(self):
            while not self._stop.wait(PROGRESS_SECONDS / 2):
                self._send("working", self._clock.silent_for_long())

        def _send(self, phase, position):
            if position is not None:
                event = events.StepEvent(
                    events.StepPhase(phase), position, self.params.get("epochs"), self.params.get("steps")
                )
                progress(event.to_json())

    return StepProgress()
