"""What the HTTP front and a model worker process say over their pipe: one dataclass per message.

Front to worker: `Ask` (a client's request), `AskCounts` (the health check's question, which is not a
client's request and never reaches the engine's request path) and `Stop`. Worker to front: `Ready` (its
models loaded), `Log` (a line for the server's log) and `Answer` (the reply to one `Ask` or `AskCounts`).
They travel pickled (`encode`, `decode`); both ends run this same module.
"""

import dataclasses
import enum
import pickle


class Kind(str, enum.Enum):
    """What a client asks of the models."""

    PREDICT = "predict"
    EXPLAIN = "explain"


@dataclasses.dataclass(frozen=True, slots=True)
class Ask:
    request_id: int
    kind: Kind
    client: str | None  # whose newer explanation replaces its older waiting one
    body: bytes
    content_type: str


@dataclasses.dataclass(frozen=True, slots=True)
class AskCounts:
    request_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class Stop:
    """Answer what came before, then end."""


@dataclasses.dataclass(frozen=True, slots=True)
class Ready:
    models: list  # each model's `Predictor.describe()`, as `/api/models` shows them


@dataclasses.dataclass(frozen=True, slots=True)
class Log:
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    request_id: int
    status: int
    body: bytes
    retry_after: int | None = None


def encode(message) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes):
    return pickle.loads(data)
