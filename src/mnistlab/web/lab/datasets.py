"""The datasets a launch may name: the built-in ones and those given at the lab's start, by name, never by path."""

import pathlib
import threading

from mnistlab.core.errors import ConfigError, DataError
from mnistlab.ml import data

BUILTIN_DATASETS = ("auto", "mnist", "fashion-mnist", "mnist-mini")


def parse_datasets(specs):
    """--dataset NAME=PATH options as {name: path}: the datasets a launch may name besides the built-in ones."""
    datasets = {}
    for spec in specs or ():
        name, equals, where = spec.partition("=")
        if not equals or not name or not where:
            raise ConfigError(
                f"--dataset takes NAME=PATH (a name launches use, and an idx directory or .npz file), got {spec!r}",
                field="dataset",
            )
        path = pathlib.Path(where).expanduser()
        if not path.exists():
            raise ConfigError(f"--dataset {name}: no such file or directory: {path}", field="dataset")
        datasets[name] = path.resolve()
    return datasets


class Datasets:
    """The names a launch may give, what each stands for, and the built-in datasets loaded once."""

    def __init__(self, given=None, log=None):
        """`given`: {name: path} of the datasets given at start (`parse_datasets`)."""
        self.given = dict(given or {})
        clash = sorted(set(self.given) & set(BUILTIN_DATASETS))
        if clash:
            raise ConfigError(
                f"dataset name {clash[0]!r} is a built-in dataset's; give yours another name (--dataset NAME=PATH)",
                field="dataset",
            )
        self.log = log or (lambda message: None)
        self._loaded = {}
        self._lock = threading.Lock()

    def names(self):
        return (*BUILTIN_DATASETS, *self.given)

    def path(self, name):
        """What a dataset name of a request stands for. Anything but a name the lab knows gets one answer,
        whether or not a file of that name exists (no file-existence oracle)."""
        if isinstance(name, str) and name in BUILTIN_DATASETS:
            return name
        if isinstance(name, str) and name in self.given:
            return str(self.given[name])
        return self.refuse()

    def refuse(self):
        raise ConfigError(
            f"dataset must be one of {', '.join(self.names())}; other datasets are given when the lab starts: mnistlab lab --dataset NAME=PATH",
            field="dataset",
        )

    def load(self, spec):
        """A loaded dataset (the built-in ones loaded once: their content is what keys a run)."""
        if spec in self._loaded:
            return self._loaded[spec]
        try:
            loaded = data.load_dataset(spec, notice=self.log)
        except DataError as error:
            raise ConfigError(str(error), field="dataset") from None
        if spec in BUILTIN_DATASETS:
            with self._lock:
                self._loaded[spec] = loaded
        return loaded
