"""Export a trained run: ONNX, a Keras file, or a TensorFlow SavedModel.

A `.keras` file loads on any backend, so ONNX and SavedModel are produced
from a TensorFlow process (tf2onnx is the mature converter) whatever backend
trained the run. Every ONNX export is checked against Keras on real test
digits before it is kept.
"""

import pathlib
import shutil
import tempfile

import numpy as np

from mnistlab import data, fileio, train
from mnistlab.errors import MnistlabError

FORMATS = ("onnx", "keras", "saved_model")
PARITY_SAMPLES = 1000
PARITY_TOLERANCE = 1e-4


def default_output(run_dir, export_format):
    names = {"onnx": "model.onnx", "keras": "exported.keras", "saved_model": "saved_model"}
    return pathlib.Path(run_dir) / names[export_format]


def export(run_dir, export_format="onnx", out=None, check_dataset=None):
    """Export a run; returns a dict with the path and, for ONNX, the parity with Keras."""
    if export_format not in FORMATS:
        raise MnistlabError(f"format must be one of {', '.join(FORMATS)}, got {export_format!r}")
    run_dir = pathlib.Path(run_dir)
    config, _ = train.read_run_config(run_dir)
    out = pathlib.Path(out) if out else default_output(run_dir, export_format)
    model_path = run_dir / "model.keras"
    if not model_path.exists():
        raise MnistlabError(f"{run_dir}: no model.keras to export; the run did not finish (or diverged)")
    if export_format == "keras":
        with fileio.atomic_path(out) as temp_path:
            shutil.copyfile(model_path, temp_path)
        return {"format": "keras", "path": str(out)}

    from mnistlab import backend as backend_lib

    backend_lib.activate("tensorflow")
    import keras

    model = keras.saving.load_model(model_path)
    model(np.zeros((1,) + tuple(config.input_shape), dtype=np.float32))  # exporters need a called model
    if export_format == "saved_model":
        return _export_saved_model(model, out)
    with fileio.atomic_path(out) as temp_path:
        model.export(str(temp_path), format="onnx", verbose=False)
        parity = onnx_parity(model, temp_path, config, check_dataset)
        if parity["max_abs_difference"] > PARITY_TOLERANCE:
            raise MnistlabError(f"ONNX export differs from Keras by {parity['max_abs_difference']:.2e} (> {PARITY_TOLERANCE:g}) on {parity['samples']} test digits; not written")
    return {"format": "onnx", "path": str(out), **parity}


def onnx_parity(model, onnx_path, config, dataset=None, samples=PARITY_SAMPLES):
    """Largest |Keras - ONNX Runtime| probability over `samples` real digits."""
    import onnxruntime

    dataset = dataset or data.load_dataset(config.dataset)
    # Test digits first; a small test split is topped up with training digits.
    digits = np.concatenate([dataset.x_test, dataset.x_train])[:samples]
    inputs = data.prepare_images(digits, config.input_shape)
    expected = model.predict(inputs, batch_size=train.EVAL_BATCH_SIZE, verbose=0)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    agreement = float((expected.argmax(axis=1) == actual.argmax(axis=1)).mean())
    return {"samples": len(inputs), "max_abs_difference": float(np.abs(expected - actual).max()), "argmax_agreement": agreement, "parity_dataset": dataset.name}


def _export_saved_model(model, out):
    out = pathlib.Path(out)
    if out.exists():
        raise MnistlabError(f"{out} already exists; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    # A directory: build it beside the target and rename it into place.
    temp_dir = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.export(str(temp_dir / "model"), format="tf_saved_model", verbose=False)
        (temp_dir / "model").rename(out)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return {"format": "saved_model", "path": str(out)}
