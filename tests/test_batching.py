"""Batched predictions: the same answers as one image at a time, whatever the batch; a bounded queue."""

import concurrent.futures
import threading

import numpy as np
import pytest

from mnistlab.ml.predict import Predictor
from mnistlab.serving import batching


@pytest.fixture(scope="module")
def predictors(trained_runs):
    return [Predictor(trained_runs[family]) for family in ("mlp", "cnn", "rnn")]


def _digits(mini, count):
    return mini.x_test[:count].astype(np.float32) / 255


class _Held:
    """Holds the batcher's first model call until released, so that the requests behind it pile up into one batch."""

    def __init__(self, predictor):
        self.predictor, self.release, self.entered, self.first = predictor, threading.Event(), threading.Event(), True

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def predict(self, images):
        if self.first:
            self.first = False
            self.entered.set()
            self.release.wait(30)
        return self.predictor.predict(images)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16, 33, 64])
def test_a_batch_of_any_size_answers_as_single_images_do(predictors, mini, count):
    images = _digits(mini, count)
    singles = [[predictor.predict(image[None])[0] for predictor in predictors] for image in images]
    held = _Held(predictors[0])
    batcher = batching.Batcher([held, *predictors[1:]])
    with concurrent.futures.ThreadPoolExecutor(max_workers=count + 1) as pool:
        opener = pool.submit(batcher.predict, images[0])  # the first request, held inside the models
        assert held.entered.wait(30)
        rest = [pool.submit(batcher.predict, image) for image in images[1:]]
        while batcher._waiting.qsize() < count - 1:  # every other request is waiting for the next round
            threading.Event().wait(0.01)
        held.release.set()
        answers = [opener.result(30), *(future.result(30) for future in rest)]
    batcher.close()
    # One round for the held request, one for all the others: a real batch of count - 1.
    assert batcher.batches == (1 if count == 1 else 2) and batcher.images == count
    for answer, single in zip(answers, singles):
        for batched, alone in zip(answer, single):
            np.testing.assert_allclose(batched, alone, rtol=1e-5, atol=1e-6)


def test_batches_are_padded_to_few_sizes():
    assert [batching.bucket(count) for count in (1, 2, 3, 5, 9, 17, 33, 64)] == [1, 2, 4, 8, 16, 32, 64, 64]


def test_past_its_bound_the_queue_refuses_at_once_with_503(predictors, mini):
    held = _Held(predictors[0])
    batcher = batching.Batcher([held], max_queue=2)
    images = _digits(mini, 4)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(batcher.predict, images[0])
        assert held.entered.wait(30)
        waiting = [pool.submit(batcher.predict, image) for image in images[1:3]]
        while batcher._waiting.qsize() < 2:
            threading.Event().wait(0.01)
        with pytest.raises(batching.ServerBusy) as refused:
            batcher.predict(images[3])
        held.release.set()
        assert all(len(future.result(30)) == 1 for future in [first, *waiting])
    batcher.close()
    assert refused.value.http_status == 503 and refused.value.retry_after_seconds >= 1


def test_after_close_a_prediction_is_refused_not_left_waiting(predictors, mini):
    """The lab closes a run's models when it lets them go; a request still holding them gets 503 at once."""
    batcher = batching.Batcher([predictors[0]])
    assert len(batcher.predict(_digits(mini, 1)[0])) == 1
    batcher.close()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        late = pool.submit(batcher.predict, _digits(mini, 1)[0])
        with pytest.raises(batching.ServerBusy, match="closed"):
            late.result(timeout=10)
    batcher.close()  # twice: nothing more


def test_a_model_that_fails_fails_its_batch_and_the_batcher_goes_on(predictors, mini):
    class Broken:
        def __init__(self):
            self.calls = 0

        def predict(self, images):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("model exploded")
            return predictors[0].predict(images)

    batcher = batching.Batcher([Broken()])
    with pytest.raises(RuntimeError, match="model exploded"):
        batcher.predict(_digits(mini, 1)[0])
    assert len(batcher.predict(_digits(mini, 1)[0])) == 1
    batcher.close()


def test_the_api_answers_503_with_retry_after_when_the_queue_is_full(predictors):
    from fastapi.testclient import TestClient

    from mnistlab.web.serve import create_app

    app = create_app(predictors)

    def full(image):
        raise batching.ServerBusy("the server has more drawings waiting than it holds; try again in a moment")

    app.state.engine.batcher.predict = full
    pixels = np.zeros((28, 28))
    pixels[5:23, 12:16] = 1
    response = TestClient(app).post("/api/predict", json={"pixels": pixels.tolist()})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert "try again" in response.json()["error"]
    app.state.engine.batcher.close()


class _Gate:
    """An explain function that waits until released, counting what it explained."""

    def __init__(self):
        self.release, self.started, self.seen = threading.Event(), threading.Event(), []

    def __call__(self, image):
        self.started.set()
        self.release.wait(30)
        self.seen.append(float(image))
        return {"image": float(image)}


def test_a_clients_newer_explanation_replaces_its_waiting_one():
    gate = _Gate()
    queue = batching.ExplainQueue(gate, max_waiting=4)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        running = pool.submit(queue.explain, "other", 0.0)
        assert gate.started.wait(30)
        older = pool.submit(queue.explain, "learner", 1.0)
        while "learner" not in queue._waiting:
            threading.Event().wait(0.01)
        newer = pool.submit(queue.explain, "learner", 2.0)
        with pytest.raises(batching.Superseded):
            older.result(30)
        gate.release.set()
        assert running.result(30) == {"image": 0.0} and newer.result(30) == {"image": 2.0}
    queue.close()
    assert gate.seen == [0.0, 2.0]  # the replaced drawing was never explained


def test_past_capacity_explanations_are_refused_at_once():
    gate = _Gate()
    queue = batching.ExplainQueue(gate, max_waiting=2)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        running = pool.submit(queue.explain, "a", 0.0)
        assert gate.started.wait(30)
        waiting = [pool.submit(queue.explain, client, 1.0) for client in ("b", "c")]
        while len(queue._waiting) < 2:
            threading.Event().wait(0.01)
        with pytest.raises(batching.ExplainBusy) as refused:
            queue.explain("d", 1.0)
        gate.release.set()
        assert [future.result(30) for future in [running, *waiting]] == [{"image": 0.0}, {"image": 1.0}, {"image": 1.0}]
    queue.close()
    assert refused.value.http_status == 503 and refused.value.retry_after_seconds >= 1


def test_explanations_wait_while_predictions_are_queued():
    predictions_waiting = threading.Event()
    predictions_waiting.set()
    gate = _Gate()
    gate.release.set()
    queue = batching.ExplainQueue(gate, busy=predictions_waiting.is_set)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(queue.explain, "a", 3.0)
        threading.Event().wait(0.2)
        assert not gate.started.is_set()  # held back behind the predictions
        predictions_waiting.clear()
        assert answer.result(30) == {"image": 3.0}
    queue.close()
