"""`Lab`: the run store seen from the lab, made of its parts: datasets, hub, queue, views, models, sites; its routes
call them."""

from mnistlab.core.errors import ConfigError
from mnistlab.jobs import sweep
from mnistlab.ml import predict
from mnistlab.record.store import Store
from mnistlab.web.lab import launch as launch_lib
from mnistlab.web.lab.datasets import Datasets
from mnistlab.web.lab.hub import Hub
from mnistlab.web.lab.models import ModelCache
from mnistlab.web.lab.queue import TrainingQueue
from mnistlab.web.lab.sites import SiteBuilder
from mnistlab.web.lab.views import RunViews


class Lab:
    """Launches into the store's queue, workers that train from it, views of its runs, their models."""

    def __init__(self, store_path=None, workers=1, log=None, ray_address=None, datasets=None):
        """`workers`: training threads (0: a lab that queues and shows, and trains nothing: tests, a machine kept
        for browsing); `ray_address`: the Ray cluster of every Ray run (None: a private local Ray); `datasets`:
        {name: path} of the datasets a launch may name besides the built-in ones (a request names one, never a path).
        """
        if workers < 0:
            raise ConfigError(f"workers must be >= 0, got {workers}", field="workers")
        with Store(store_path) as store:  # a store that cannot be opened is refused here, with its one-line error
            self.store_path = store.path
        self.workers = workers
        self.log = log or (lambda message: None)
        self.backend = None
        self.hub = Hub()
        self.datasets = Datasets(datasets, log=self.log)
        self.queue = TrainingQueue(self.store_path, self.hub, workers=workers, log=self.log, ray_address=ray_address)
        self.views = RunViews(self.store_path, self.hub)
        self.models = ModelCache(self.store_path, self.datasets, self.keras_backend)
        self.sites = SiteBuilder(self.store_path, self.models.run_dir)

    def start(self):
        """Mark the runs of a lab that died as interrupted, then start the workers on what is queued."""
        self.keras_backend()
        self.queue.start()

    def stop_taking(self):
        """Take no more queued runs (the lab is stopping); the runs in progress go on until `stop`."""
        self.queue.stop_taking()

    def stop(self, timeout=60):
        """Stop the trainings in progress (they end interrupted), wait for the workers, let the models go."""
        self.queue.stop(timeout)
        self.models.close()

    def keras_backend(self):
        """The one Keras backend of every model this process opens (reports, inside views, draw pages)."""
        if self.backend is None:
            self.backend = predict.activate_for([], "keras")
        return self.backend

    def plan(self, request):
        """(sweep jobs, how to run them) for a launch request; a ConfigError (naming its field) for anything wrong."""
        configs, executor = launch_lib.check(request, self.datasets)
        dataset = self.datasets.load(configs[0][1].dataset)
        return sweep.plan(configs, dataset), {"executor": executor}

    def launch(self, request):
        """Check a launch request as the CLI checks its options, and queue one run per seed: [{"run_id", "status"}]."""
        jobs, launch = self.plan(request)
        return self.queue.queue(jobs, launch)

    def list_runs(self, query):
        """The runs view (`RunViews.list_runs`)."""
        return self.views.list_runs(query)
