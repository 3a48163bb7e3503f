"""`serve --workers N`: the models in worker processes behind one HTTP front.

The answers must not depend on how many workers there are nor on how the
requests were batched; a worker that dies has its requests answered 503 (not
left hanging) and is replaced; SIGTERM lets the requests in flight finish.
"""

import asyncio
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import drawn_png, env_without_backend, free_port, run_apart

pytest.importorskip("fastapi")


def _pngs(mini, count):
    """COUNT different drawings: test digits as the page's canvas sends them."""
    return [drawn_png(mini, index) for index in range(count)]


def _answers(pool, bodies):
    """Every body sent at once through POOL; the parsed replies, in order."""

    async def everything():
        return await asyncio.gather(*(pool.answer("predict", None, body, "image/png") for body in bodies))

    return run_apart(everything())


@pytest.fixture(scope="module")
def single_path(trained_runs, mini):
    """The reference: each drawing preprocessed and predicted alone, in this process, no batching."""
    from mnistlab.ml import predict
    from mnistlab.serving import engine

    predictors = [predict.Predictor(trained_runs[family]) for family in ("mlp", "cnn")]
    bodies = _pngs(mini, 64)
    expected = []
    for body in bodies:
        image, _ = engine.decode(body, "image/png")
        expected.append([predictor.predict(image[None])[0] for predictor in predictors])
    return [trained_runs["mlp"], trained_runs["cnn"]], bodies, expected


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_answers_are_the_same_for_any_batch_and_worker_count(single_path, workers):
    from mnistlab.serving.workers import WorkerPool

    run_dirs, bodies, expected = single_path
    pool = WorkerPool(
        run_dirs, workers=workers, log=lambda line: None, inside_views=False, explain_worker=False
    ).start()
    try:
        for count in (1, 2, 7, 16, 33, 64):  # every padded batch size the batcher uses, and between them
            replies = _answers(pool, bodies[:count])
            for reply, single in zip(replies, expected):
                assert reply.status == 200, reply.body
                got = [prediction["probabilities"] for prediction in json.loads(reply.body)["predictions"]]
                # The answer rounds to 6 decimals; batching itself changes nothing beyond float noise.
                np.testing.assert_allclose(got, np.array(single), atol=2e-6)
        if workers == 2:
            assert all(worker["ready"] for worker in pool.status()["workers"])
    finally:
        pool.close()


@pytest.mark.slow
def test_a_killed_worker_has_its_requests_answered_503_and_is_replaced(trained_runs, mini):
    from mnistlab.serving.workers import WorkerPool

    lines = []
    pool = WorkerPool(
        [trained_runs["mlp"]],
        workers=1,
        log=lines.append,
        inside_views=False,
        explain_worker=False,
        max_in_flight=10**6,
    ).start()
    # Should the event loop block (as it did when it wrote to a full pipe itself), this kills the worker in its
    # place, and the test fails rather than hangs.
    fired = []
    first_pid = pool.status()["workers"][0]["pid"]
    watchdog = threading.Timer(120, lambda: fired.append(os.kill(first_pid, signal.SIGKILL)))
    watchdog.daemon = True
    try:
        drawings = _pngs(mini, 8)
        # Twice what its pipe's buffer holds, whatever this system's buffer: the writes past it wait in the
        # worker's sending thread, not in the event loop.
        bodies = drawings * (2 * pool._workers[0].pipe_bytes // min(map(len, drawings)) // len(drawings) + 1)

        async def kill_while_answering():
            # Stopped first, so that requests are still in flight when it dies however fast the machine answers
            # (about 1 ms each: a fast one answered all of them within a fixed pause).
            os.kill(first_pid, signal.SIGSTOP)
            watchdog.start()
            asked = [asyncio.ensure_future(pool.answer("predict", None, body, "image/png")) for body in bodies]
            await asyncio.sleep(0.2)
            health = await pool.health()  # the loop still answers, and says which worker does not
            waiting = pool._workers[0].sends_waiting
            with contextlib.suppress(ProcessLookupError):  # the watchdog's kill came first
                os.kill(first_pid, signal.SIGKILL)
            watchdog.cancel()
            # None may be left hanging: each is answered within seconds.
            return health, waiting, await asyncio.wait_for(asyncio.gather(*asked), timeout=30)

        health, waiting, replies = run_apart(kill_while_answering())
        assert not fired, "the event loop blocked while the worker was stopped"
        assert waiting > 0  # its pipe had no room left: the rest waited in its sending thread
        assert [(worker["ok"], worker.get("error")) for worker in health["workers"]] == [
            (False, "no answer within 1 s")
        ]
        # Each one: those it held, and those waiting to be written to it (none reaches its replacement, still loading).
        assert {reply.status for reply in replies} == {503}
        refused = replies[-1]
        assert refused.retry_after and "try again" in json.loads(refused.body)["error"]
        deadline = time.time() + 120
        while not pool.status()["workers"][0]["ready"] and time.time() < deadline:
            time.sleep(0.2)
        status = pool.status()
        assert status["restarts"] == 1 and status["workers"][0]["pid"] != first_pid and status["workers"][0]["ready"]
        assert any("killed by signal 9 (SIGKILL)" in line and "starting a new one" in line for line in lines), lines
        assert {reply.status for reply in _answers(pool, bodies[:8])} == {200}
    finally:
        watchdog.cancel()
        pool.close()


@pytest.mark.slow  # processes stopped and restarted: the full suite's, not the quick loop's
def test_explanations_run_in_a_process_of_their_own_below_the_predictions(trained_runs, mini):
    """Predictions never wait for explanations: with the explain worker frozen, they are answered all the same.

    The explain worker runs at a lower priority (nice 10 more than the model
    workers), so that on cores the predictions fill, the kernel gives them the
    cores first; when it dies, its requests are answered 503 and it is replaced.
    """
    from mnistlab.serving.worker_process import EXPLAIN_NICENESS
    from mnistlab.serving.workers import EXPLAIN_IN_FLIGHT, WorkerPool

    lines = []
    pool = WorkerPool([trained_runs["mlp"]], workers=1, log=lines.append, inside_views=False).start()
    try:
        workers = pool.status()["workers"]
        assert [worker["role"] for worker in workers] == ["predict", "explain"]
        predicting, explaining = workers[0]["pid"], workers[1]["pid"]
        if hasattr(os, "getpriority"):
            # (nice values stop at 19: under `nice -n 19 pytest` both are 19)
            assert os.getpriority(os.PRIO_PROCESS, explaining) == min(
                19, os.getpriority(os.PRIO_PROCESS, predicting) + EXPLAIN_NICENESS
            )
        bodies = _pngs(mini, 8)

        async def with_the_explainer_frozen():
            # A class's worth of explanations (more than the pipe to a stopped process holds)
            # while it cannot read them: the front must neither block on its pipe nor queue them all.
            os.kill(explaining, signal.SIGSTOP)
            try:
                asked = [
                    asyncio.ensure_future(
                        pool.answer("explain", f"learner-{number}", bodies[number % len(bodies)], "image/png")
                    )
                    for number in range(48)
                ]
                predictions = await asyncio.wait_for(
                    asyncio.gather(*(pool.answer("predict", None, body, "image/png") for body in bodies * 4)),
                    timeout=30,
                )
                await asyncio.sleep(0.2)
                shed = [future.result() for future in asked if future.done()]
            finally:
                os.kill(explaining, signal.SIGCONT)
            return predictions, shed, await asyncio.wait_for(asyncio.gather(*asked), timeout=120)

        predictions, shed, explained = run_apart(with_the_explainer_frozen())
        assert {reply.status for reply in predictions} == {200}
        # At most EXPLAIN_IN_FLIGHT reach the worker (a request being handed over can count twice for a moment).
        assert 48 - EXPLAIN_IN_FLIGHT <= len(shed) < 48 and {reply.status for reply in shed} == {503}
        assert {reply.status for reply in explained} <= {200, 503} and any(
            reply.status == 200 and json.loads(reply.body)["explanations"][0]["model"] for reply in explained
        )

        async def kill_while_explaining():
            os.kill(explaining, signal.SIGSTOP)  # so that every request is still in flight when it dies
            asked = [
                asyncio.ensure_future(pool.answer("explain", f"learner-{number}", body, "image/png"))
                for number, body in enumerate(bodies)
            ]
            await asyncio.sleep(0.2)
            os.kill(explaining, signal.SIGKILL)
            return await asyncio.wait_for(asyncio.gather(*asked), timeout=30)

        refused = run_apart(kill_while_explaining())
        assert {reply.status for reply in refused} == {503} and all(reply.retry_after for reply in refused)
        assert {reply.status for reply in _answers(pool, bodies)} == {200}  # the model worker never noticed
        deadline = time.time() + 120
        while not pool.status()["workers"][1]["ready"] and time.time() < deadline:
            time.sleep(0.2)
        assert pool.status()["workers"][1]["pid"] != explaining
        assert any(line.startswith("explain worker (pid") and "starting a new one" in line for line in lines), lines
    finally:
        pool.close()


@pytest.mark.slow  # processes stopped and restarted: the full suite's, not the quick loop's
def test_healthz_answers_within_a_second_when_a_worker_hangs_and_says_which(trained_runs):
    """A stopped (SIGSTOP) worker: /healthz answers 503 "degraded" within about a second, naming it; asked again,
    it sends the stopped worker no second question; once it runs again, 200."""
    from fastapi.testclient import TestClient

    from mnistlab.serving.workers import HEALTH_TIMEOUT, WorkerPool
    from mnistlab.web.serve import create_app

    pool = WorkerPool([trained_runs["mlp"]], workers=1, log=lambda line: None, inside_views=False).start()
    try:
        # One event loop for every request, as under uvicorn.
        with TestClient(create_app(pool=pool)) as client:
            healthy = client.get("/healthz")
            assert healthy.status_code == 200 and healthy.json()["status"] == "ok", healthy.text
            assert [worker["ok"] for worker in healthy.json()["workers"]] == [True, True] and healthy.json()["counts"][
                "batches"
            ] >= 0
            for number, role in enumerate(("predict", "explain")):  # the model worker, then the explain worker
                stopped = pool.status()["workers"][number]
                os.kill(stopped["pid"], signal.SIGSTOP)
                try:
                    for _ in range(2):
                        started = time.perf_counter()
                        degraded = client.get("/healthz")
                        took = time.perf_counter() - started
                        assert degraded.status_code == 503, degraded.text
                        # A bound on waiting, not on speed: without the timeout, /healthz waited on the stopped worker for ever.
                        assert took < 10 * HEALTH_TIMEOUT, took
                        body = degraded.json()
                        assert body["status"] == "degraded" and [worker["ok"] for worker in body["workers"]] == [
                            number != 0,
                            number != 1,
                        ]
                        assert (
                            body["workers"][number]["role"] == role
                            and body["workers"][number]["error"] == "no answer within 1 s"
                        )
                    worker = pool._workers[number]
                    assert (
                        len(worker.in_flight) + worker.sends_waiting == 1
                    )  # one question waits; the second call sent none
                finally:
                    os.kill(stopped["pid"], signal.SIGCONT)
                deadline = time.time() + 30
                while (again := client.get("/healthz")).status_code != 200 and time.time() < deadline:
                    time.sleep(0.2)
                assert again.status_code == 200 and again.json()["status"] == "ok", again.text
    finally:
        pool.close()


@pytest.mark.slow
def test_sigterm_answers_the_requests_in_flight_then_exits(trained_runs, mini):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", "serve", str(trained_runs["mlp"]), "--port", str(port), "--workers", "1"],
        env=env_without_backend(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stopped = []
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        # Listening on loopback, it answers its own names only (DNS rebinding).
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/api/models", headers={"Host": "rebound.example"})
        refused = connection.getresponse()
        assert refused.status == 403 and json.loads(refused.read())["error"].startswith(
            "this server answers to 127.0.0.1"
        )

        # Eight explanations (each from its own client: none replaces another) held in flight when the signal comes:
        # the explain worker is stopped until every one has reached it, however fast or slow the machine.
        def health():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/healthz")
            return json.loads(connection.getresponse().read())

        explainer = next(worker for worker in health()["workers"] if worker["role"] == "explain")
        os.kill(explainer["pid"], signal.SIGSTOP)
        stopped.append(explainer["pid"])
        body = drawn_png(mini, 0)
        sockets = []
        for number in range(8):
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            sock.sendall(
                b"POST /api/explain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nX-Client-Id: c%d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                % (number, len(body))
                + body
            )
            sockets.append(sock)
        # Its in-flight count holds the eight and the one health question that waits on it (asked once, not again).
        deadline = time.time() + 60
        while time.time() < deadline and health()["workers"][explainer["number"]]["in_flight"] < 8 + 1:
            time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # uvicorn has begun to drain: it no longer accepts, and waits for what it holds
        os.kill(explainer["pid"], signal.SIGCONT)
        answers = []  # none can have been worked out before the signal: the worker was stopped until after it
        for sock in sockets:
            chunks = []
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
            answers.append(b"".join(chunks))
            sock.close()
        # uvicorn ends the process by the signal it drained for (-15), as a supervisor expects.
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
        assert [answer.split(b" ", 2)[1] for answer in answers] == [b"200"] * 8
        assert all(json.loads(answer.split(b"\r\n\r\n", 1)[1])["explanations"] for answer in answers)
    finally:
        if server.poll() is None:
            server.kill()
        for pid in stopped:  # a stopped worker would outlive a failed test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        output = server.communicate()[0]
    assert "Traceback" not in output, output
    assert "model worker" in output and "ended" not in output  # the worker was stopped, not found dead


def test_a_batch_of_requests_costs_a_decode_each_one_call_per_model_and_little_beside(app, mini, monkeypatch):
    """The request path's regression guard in the quick loop, with no clock bound: a worker's batch of 16 drawings
    (Engine.predict_many) decodes each once and calls each model once; and its CPU time, beside decoding the same
    16 drawings alone (measured in the same test, interleaved, in this thread's time), stays under 3x: the models,
    batched, and the JSON answers add a fraction (the benchmark's profile: decode and preprocess are most of a
    request). A path that decodes twice, calls the models per request or writes its answer slowly fails here on
    any machine, as it would on this one.
    """
    from mnistlab.serving import engine as engine_lib

    engine = app.state.engine
    requests = [(body, "image/png") for body in _pngs(mini, 16)]
    engine.predict_many(requests)  # compiled for this batch size
    calls = {"decode": 0, "model": 0}
    real_decode = engine_lib.decode

    def counted_decode(*args, **kwargs):
        calls["decode"] += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(engine_lib, "decode", counted_decode)
    for predictor in engine.batcher.predictors:
        real_predict = predictor.predict

        def counted_predict(batch, real_predict=real_predict):
            calls["model"] += 1
            return real_predict(batch)

        monkeypatch.setattr(predictor, "predict", counted_predict)
    replies = engine.predict_many(requests)
    assert {reply.status for reply in replies} == {200}
    assert calls == {"decode": 16, "model": len(engine.batcher.predictors)}, calls

    def thread_seconds(work):
        started = time.thread_time()
        work()
        return time.thread_time() - started

    ratios = []
    for _ in range(3):  # interleaved rounds, the best kept: interference only ever adds
        path = thread_seconds(lambda: [engine.predict_many(requests) for _ in range(5)])
        decoding = thread_seconds(lambda: [real_decode(body, kind) for _ in range(5) for body, kind in requests])
        ratios.append(path / decoding)
    print(f"request path / decoding: {ratios}")
    assert min(ratios) < 3, f"the request path costs {min(ratios):.2f}x decoding its drawings (rounds: {ratios})"


def test_a_workers_batch_gets_the_replies_each_request_gets_alone(app, mini):
    """Engine.predict_many (how a worker answers every request waiting on its pipe) against answer() one by one, bad bodies among them."""
    import io

    from PIL import Image

    engine = app.state.engine
    blank = io.BytesIO()
    Image.new("RGBA", (280, 280), (0, 0, 0, 255)).save(blank, format="PNG")
    bodies = [*_pngs(mini, 3), b"not an image at all", *_pngs(mini, 2), blank.getvalue()]
    many = engine.predict_many([(body, "image/png") for body in bodies])
    alone = [engine.answer("predict", None, body, "image/png") for body in bodies]
    assert [reply.status for reply in many] == [reply.status for reply in alone] == [200, 200, 200, 415, 200, 200, 422]
    for batched, single in zip(many, alone):
        if single.status != 200:
            assert batched.body == single.body  # the same one-line error
            continue
        got_answer, want_answer = json.loads(batched.body), json.loads(single.body)
        assert got_answer["input"] == want_answer["input"] and got_answer["preprocess"] == want_answer["preprocess"]
        for got, want in zip(got_answer["predictions"], want_answer["predictions"]):
            assert got["model"] == want["model"] and got["labels"] == want["labels"]
            np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=2e-6)
    # The input is written as the short decimals it was rounded to, not float32's long tails.
    assert all(len(repr(value)) <= 6 for row in json.loads(alone[0].body)["input"] for value in row)
