"""Export a trained run: ONNX, a Keras file, or a TensorFlow SavedModel.

A `.keras` file loads on any backend, so ONNX and SavedModel are produced
from a TensorFlow process (tf2onnx is the mature converter) whatever backend
trained the run. Every ONNX export is checked against Keras on real test
digits before it is kept. `onnx-inside` exports the inside view's graph
(`explain.Explainer.probe`: each layer the inside view shows, the RNN's
belief after each row, then the probabilities), every output checked.
"""

import pathlib
import shutil
import tempfile

import numpy as np

from mnistlab.core import fileio
from mnistlab.core.config import EXPORT_FORMATS as FORMATS
from mnistlab.core.errors import ConfigError, MissingExtra, MnistlabError
from mnistlab.ml import backend as backend_lib
from mnistlab.ml import data, predict
from mnistlab.record import rundir

PARITY_SAMPLES = 1000
PARITY_TOLERANCE = 1e-4
INSIDE_PARITY_SAMPLES = 256  # every layer's output for each: a CNN's first maps alone are 43 KB a digit


def default_output(run_dir, export_format):
    names = {
        "onnx": "model.onnx",
        "onnx-inside": "inside.onnx",
        "keras": "exported.keras",
        "saved_model": "saved_model",
    }
    return pathlib.Path(run_dir) / names[export_format]


def export(run_dir, export_format="onnx", out=None):
    """Export a run; returns a dict with the path and, for ONNX, the parity with Keras."""
    if export_format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {export_format!r}")
    config, _ = rundir.read_config(run_dir)
    model_path = rundir.model_path(run_dir)
    out = pathlib.Path(out) if out else default_output(run_dir, export_format)
    if export_format == "keras":
        with fileio.atomic_path(out) as temp_path:
            shutil.copyfile(model_path, temp_path)
        return {"format": "keras", "path": str(out)}
    if export_format in ("onnx", "onnx-inside"):
        _need_onnx("mnistlab export --format onnx")
    if export_format == "saved_model" and out.exists():
        # Refused before TensorFlow loads (seconds): a directory is not replaced, unlike a file.
        raise MnistlabError(f"{out} already exists; choose another --out")
    model = _loaded(model_path, config)
    if export_format == "saved_model":
        return _export_saved_model(model, out)
    if export_format == "onnx-inside":
        from mnistlab.ml import explain

        return _export_inside(explain.Explainer(model, config), config, out)
    with fileio.atomic_path(out) as temp_path:
        model.export(str(temp_path), format="onnx", verbose=False)
        parity = onnx_parity(model, temp_path, config)
        if parity["max_abs_difference"] > PARITY_TOLERANCE:
            raise MnistlabError(
                f"ONNX export differs from Keras by {parity['max_abs_difference']:.2e} (> {PARITY_TOLERANCE:g}) on {parity['samples']} test digits; not written"
            )
    return {"format": "onnx", "path": str(out), **parity}


def export_for_page(run_dir, out):
    """(the `onnx-inside` export of RUN_DIR at OUT, checked as that is, and `Explainer.layout()`): a page's model
    and what the page needs beside it to show the inside view (`web.site`)."""
    from mnistlab.ml import explain

    _need_onnx("mnistlab site")
    config, _ = rundir.read_config(run_dir)
    explainer = explain.Explainer(_loaded(rundir.model_path(run_dir), config), config)
    return _export_inside(explainer, config, out), explainer.layout()


def _need_onnx(what):
    for module in ("onnx", "onnxruntime", "tf2onnx"):
        if not backend_lib.installed(module):
            raise MissingExtra(what, "onnx")


def _loaded(model_path, config):
    """The run's model on TensorFlow (tf2onnx and SavedModel need it), called once: exporters need a called model."""
    backend_lib.activate("tensorflow")
    import keras

    model = keras.saving.load_model(model_path)
    model(np.zeros((1,) + tuple(config.input_shape), dtype=np.float32))
    return model


def onnx_parity(model, onnx_path, config, samples=PARITY_SAMPLES):
    """Largest |Keras - ONNX Runtime| over every output of MODEL (one: the probabilities; the inside view's graph:
    each layer shown, then the probabilities) on up to `samples` test digits of the run's dataset, and how often
    the last output's class agrees."""
    from mnistlab.ml import models

    dataset = data.load_dataset(config.dataset)
    inputs = data.prepare_images(dataset.x_test[:samples], config.input_shape)
    expected = model.predict(inputs, batch_size=models.EVAL_BATCH_SIZE, verbose=0)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    session = predict.onnx_session(onnx_path)
    actual = session.run(None, {session.get_inputs()[0].name: inputs})
    if len(actual) != len(expected):
        raise MnistlabError(f"the ONNX graph has {len(actual)} outputs where Keras has {len(expected)}; not written")
    difference = max(float(np.abs(np.asarray(e, np.float64) - a).max()) for e, a in zip(expected, actual))
    return {
        "samples": len(inputs),
        "max_abs_difference": difference,
        "argmax_agreement": float((expected[-1].argmax(axis=1) == actual[-1].argmax(axis=1)).mean()),
        "parity_dataset": dataset.name,
        "outputs": [output.name for output in session.get_outputs()],
    }


def _export_inside(explainer, config, out):
    """The inside view's graph (EXPLAINER's probe) as ONNX, each output checked against Keras on
    INSIDE_PARITY_SAMPLES test digits."""
    probe = explainer.probe
    probe(np.zeros((1,) + tuple(config.input_shape), dtype=np.float32))  # exporters need a called model
    with fileio.atomic_path(out) as temp_path:
        probe.export(str(temp_path), format="onnx", verbose=False)
        parity = onnx_parity(probe, temp_path, config, samples=INSIDE_PARITY_SAMPLES)
        if parity["max_abs_difference"] > PARITY_TOLERANCE:
            raise MnistlabError(
                f"the inside view's ONNX graph differs from Keras by {parity['max_abs_difference']:.2e} (> {PARITY_TOLERANCE:g}) on {parity['samples']} test digits; not written"
            )
    return {"format": "onnx-inside", "path": str(out), **parity}


def _export_saved_model(model, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    # A directory: build it beside the target and rename it into place.
    temp_dir = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.export(str(temp_dir / "model"), format="tf_saved_model", verbose=False)
        (temp_dir / "model").rename(out)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return {"format": "saved_model", "path": str(out)}
