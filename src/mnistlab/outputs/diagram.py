"""A config's model, shown: the Keras summary and the Graphviz diagram, without training."""

import pathlib

from mnistlab.core.errors import ConfigError
from mnistlab.ml import backend as backend_lib


def _built(config):
    config = backend_lib.pin(config)
    backend_lib.activate(config.backend)
    from mnistlab.ml import models  # imports Keras: only once the backend is chosen

    return models, models.build_model(config)


def summary(config):
    """Keras' summary of the model CONFIG describes, as text."""
    models, model = _built(config)
    return models.summary_text(model)


def plot(config, out):
    """Write the model diagram to OUT (.png or .svg)."""
    if pathlib.Path(out).suffix.lower() not in (".png", ".svg"):
        raise ConfigError(f"--out {out}: the diagram is written as .png or .svg; name the file accordingly")
    models, model = _built(config)
    return models.plot(model, out)
