// A run's statuses and its progress events' kinds and phases, as mnistlab.core.events declares them.
// The pages compare with these names, never with string literals; tests/test_events.py holds them to Python's.
const RunStatus = Object.freeze({
  QUEUED: "queued",
  RUNNING: "running",
  DONE: "done",
  DIVERGED: "diverged",
  FAILED: "failed",
  INTERRUPTED: "interrupted",
  CANCELLED: "cancelled",
});
const EventKind = Object.freeze({
  STEP: "step",
  EPOCH: "epoch",
  STATUS: "status",
  SNAPSHOT: "snapshot",
  END: "end",
});
const StepPhase = Object.freeze({
  TRAIN: "train",
  VALIDATION: "validation",
  WORKING: "working",
});
