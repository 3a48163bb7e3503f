"""A model worker process of `serve --workers N`, from its side: size its thread pools, load the models, then
answer the front's messages (`messages`) from its pipe until told to stop.

Predictions waiting on the pipe are answered as one batch; explanations and the health check's question
wait in threads of their own.
"""

import concurrent.futures
import contextlib
import os
import threading

from mnistlab.serving import batching, messages
from mnistlab.serving import engine as engine_lib


def cores():
    """The cores this process may run on (its affinity, which containers and `taskset` set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_worker(workers):
    return max(1, cores() // max(1, workers))


def limit_native_threads(threads):
    """Size the numeric libraries' thread pools in this process, before any of them is imported.

    Called first thing in a worker process (its own environment, never the
    server's), so the N workers share the cores instead of each spawning a
    pool as large as the machine.
    """
    threads = str(int(threads))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = threads
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    if threads == "1":
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()


EXPLAIN_NICENESS = 10  # the explain worker's nice value: a tenth of a model worker's share of a busy core


def worker_main(connection, run_dirs, runtime, threads, inside_views, role="both"):
    """A worker process: load the models, then answer requests from the pipe until told to stop.

    `role`: "predict" (a model worker beside an explain worker), "explain" (the
    explain worker: lower priority, no batched warm-up) or "both".
    """
    limit_native_threads(threads)
    from mnistlab.ml import predict

    pipe = _Pipe(connection)
    predict.activate_for(run_dirs, runtime)
    predictors = engine_lib.load_predictors(run_dirs, runtime, log=pipe.log)
    engine = engine_lib.Engine(predictors, warm=role != "explain")
    if inside_views:
        engine.warm_inside_views(log=pipe.log)
    if role == "explain":
        # Below the predictions from here on, not while loading: at nice 10 on a busy machine, loading Keras and the
        # models would get a tenth of a model worker's share of a busy core, and the server would wait as long to be ready.
        # os.nice: not on Windows, where it runs at the same priority.
        with contextlib.suppress(AttributeError, OSError):
            os.nice(EXPLAIN_NICENESS)
    pipe.send(messages.Ready(engine.describe()))
    pipe.serve(engine)
    engine.close()


class _Pipe:
    """The worker's end of its pipe: messages out (one writer at a time), requests in until `Stop`."""

    def __init__(self, connection):
        self.connection = connection
        self._sending = threading.Lock()

    def send(self, message):
        data = messages.encode(message)
        with self._sending:
            self.connection.send_bytes(data)

    def log(self, text):
        self.send(messages.Log(text))

    def reply(self, request_id, answered):
        try:
            self.send(messages.Answer(request_id, answered.status, answered.body, answered.retry_after))
        except (OSError, ValueError):  # the front is gone
            pass

    def receive(self):
        """Every message waiting (at least one, at most a batch), or None when the pipe has closed."""
        try:
            received = [messages.decode(self.connection.recv_bytes())]
            while len(received) < batching.BUCKETS[-1] and self.connection.poll():
                received.append(messages.decode(self.connection.recv_bytes()))
        except (EOFError, OSError):
            return None
        return received

    def serve(self, engine):
        """Answer until told to stop. Predictions: this thread reads every request waiting on the pipe and answers
        the predictions among them as one batch (Engine.predict_many): no thread per request, no hand-over to the
        Batcher's thread. Explanations (and the health check's question) wait for their queue in threads of their
        own; the ExplainQueue holds at most a few per client, the rest get 503."""

        def handle(message):
            if isinstance(message, messages.AskCounts):
                self.reply(message.request_id, engine.counts_reply())
            else:
                answered = engine.answer(message.kind, message.client, message.body, message.content_type)
                self.reply(message.request_id, answered)

        with concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="mnistlab-explain") as waiting:
            stopping = False
            while not stopping and (received := self.receive()) is not None:
                predictions = []
                for message in received:
                    if isinstance(message, messages.Stop):
                        stopping = True  # answer what came before it, then stop
                    elif isinstance(message, messages.Ask) and message.kind is messages.Kind.PREDICT:
                        predictions.append(message)
                    else:
                        waiting.submit(handle, message)
                if predictions:
                    answers = engine.predict_many([(ask.body, ask.content_type) for ask in predictions])
                    for ask, answered in zip(predictions, answers):
                        self.reply(ask.request_id, answered)
