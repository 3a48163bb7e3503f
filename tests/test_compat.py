"""Keras' internals that mnistlab uses (mnistlab.ml.compat): each is where expected, and each fallback works.

If a Keras release moves a hook, the first test fails naming it: update
compat.HOOKS (or the fallback becomes the path) before admitting that release.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mnistlab.ml import compat


@pytest.mark.parametrize("name", list(compat.HOOKS))
def test_every_hook_is_where_this_keras_keeps_it(name):
    import keras

    module_name, attribute = compat.HOOKS[name]
    assert compat.hook(name) is not None, (
        f"Keras {keras.__version__} has no {module_name}.{attribute}: mnistlab.ml.compat must follow it"
    )


def _moved(monkeypatch, *names):
    """Make compat see HOOKS NAMES as moved, as a Keras release that renamed them would."""
    moved = {**compat.HOOKS, **{name: ("keras.src.no_such_module", "nothing") for name in names}}
    monkeypatch.setattr(compat, "HOOKS", moved)


def _draws(seed, seeding):
    import keras

    seeding(seed)
    return [np.asarray(keras.random.uniform((3,))) for _ in range(2)]


def test_the_fast_seed_gives_what_keras_own_gives():
    import keras

    from mnistlab.ml import backend

    ours = _draws(5, backend.seed_everything)
    theirs = _draws(5, keras.utils.set_random_seed)
    np.testing.assert_array_equal(ours, theirs)


def test_seeding_falls_back_to_keras_own_when_the_hooks_move(monkeypatch):
    import keras

    from mnistlab.ml import backend

    _moved(monkeypatch, "global_state")
    assert compat.seed_without_tensorflow(1) is False
    ours = _draws(7, backend.seed_everything)  # takes keras.utils.set_random_seed
    monkeypatch.undo()
    np.testing.assert_array_equal(ours, _draws(7, keras.utils.set_random_seed))


def _in_fresh_jax_process(body):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    script = "import sys\n" + textwrap.dedent(body)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout.strip()


def test_saving_a_jax_model_imports_no_tensorflow(tmp_path):
    body = f"""
        from mnistlab.ml import run_model
        from mnistlab.ml import models
        from mnistlab.core.config import Config
        run_model.save_model({str(tmp_path)!r}, models.build_model(Config(hidden_units=(4,))))
        print("tensorflow" in sys.modules)
        """
    assert _in_fresh_jax_process(body) == "False"


@pytest.mark.slow  # a fresh JAX process; the quick loop's saving test is another
def test_saving_still_works_when_the_probe_moves(tmp_path):
    # The fallback: Keras imports TensorFlow to look, and the model still saves and loads.
    body = f"""
        from mnistlab.ml import compat, models
        from mnistlab.ml import run_model
        from mnistlab.core.config import Config
        compat.HOOKS["module_utils"] = ("keras.src.no_such_module", "nothing")
        model = models.build_model(Config(hidden_units=(4,)))
        run_model.save_model({str(tmp_path)!r}, model)
        import keras
        print(keras.saving.load_model({str(tmp_path / "model.keras")!r}).count_params() == model.count_params())
        """
    assert _in_fresh_jax_process(body) == "True"


@pytest.mark.slow  # a TensorFlow process
def test_the_tensorflow_pipeline_falls_back_to_arrays_with_a_warning():
    # On TensorFlow without the adapter, fit gets the arrays (Keras' own path), and a warning says why epochs may stall.
    body = """
        import warnings
        import numpy as np
        from mnistlab.ml import backend, compat
        compat.HOOKS["array_data_adapter"] = ("keras.src.no_such_module", "nothing")
        x, y = np.zeros((10, 784), "float32"), np.zeros((10, 10), "float32")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inputs, targets, batch_size = backend.fit_inputs(x, y, 4)
        print(inputs is x, targets is y, batch_size, any("ArrayDataAdapter has moved" in str(w.message) for w in caught))
        """
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    completed = subprocess.run(
        [sys.executable, "-c", "import sys\n" + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["True", "True", "4", "True"]


def test_bf16_is_set_per_layer_and_leaves_the_process_policy_alone():
    import keras

    from mnistlab.core.config import Config
    from mnistlab.ml import models

    before = keras.config.dtype_policy().name
    model = models.build_model(Config(family="cnn", precision="bf16", batch_norm=True, dropout_rate=0.2), compile=False)
    assert keras.config.dtype_policy().name == before == "float32"
    policies = {
        layer.name: layer.dtype_policy.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)
    }
    assert policies.pop("output") == "float32"  # the probabilities the loss sees stay float32
    assert set(policies.values()) == {"mixed_bfloat16"}, policies
    # A model built after it is plain float32: nothing leaked.
    plain = models.build_model(Config(family="cnn"), compile=False)
    assert {layer.dtype_policy.name for layer in plain.layers if not isinstance(layer, keras.layers.InputLayer)} == {
        "float32"
    }
