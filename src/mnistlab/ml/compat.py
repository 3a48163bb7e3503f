"""Every reach into Keras' private modules, in one place.

mnistlab uses three of Keras' internals, each for a measured reason and each
with a fallback to the public API that gives the same result, only slower
or louder. `tests/test_compat.py` checks, for the Keras installed, that each
hook is where this module expects (so a Keras release that moves one fails
the suite loudly instead of silently taking the fallback), and that each
fallback works. Keras is imported inside the functions: the backend must be
chosen before anything imports it.

- `seed_without_tensorflow`: keras.utils.set_random_seed imports TensorFlow
  (two seconds and a screen of logs) to seed it even on JAX and torch.
- `tensorflow_probe_off`: saving a JAX or torch model makes Keras' serializer
  ask "is TensorFlow available?", which imports it.
- `array_data_adapter`: on TensorFlow, the adapter Keras builds its tf.data
  pipeline with, so that mnistlab can build the same pipeline with tf.data's
  autotuner off (BENCHMARKS.md: seconds of stall per epoch otherwise).
"""

import contextlib
import importlib
import sys

# The private hooks, by module and attribute: what the tests check is there.
HOOKS = {
    "global_state": ("keras.src.backend.common.global_state", "set_global_attribute"),
    "seed_generator": ("keras.src.random.seed_generator", "GLOBAL_SEED_GENERATOR"),
    "module_utils": ("keras.src.utils.module_utils", "tensorflow"),
    "array_data_adapter": ("keras.src.trainers.data_adapters.array_data_adapter", "ArrayDataAdapter"),
}


def hook(name):
    """The module of hook NAME, or None where this Keras does not have it where expected."""
    module_name, attribute = HOOKS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return module if hasattr(module, attribute) else None


def seed_without_tensorflow(seed) -> bool:
    """Set Keras' global seed (what keras.utils.set_random_seed does for Keras) without importing TensorFlow.

    Returns False, having done nothing, where the hooks have moved: the
    caller then takes keras.utils.set_random_seed.
    """
    global_state, seed_generator = hook("global_state"), hook("seed_generator")
    if global_state is None or seed_generator is None:
        return False
    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    return True


@contextlib.contextmanager
def tensorflow_probe_off():
    """Within the block, Keras' "is TensorFlow available?" answers no, unless TensorFlow is imported already.

    Where the probe has moved, nothing changes (Keras then imports TensorFlow to look).
    """
    module_utils = hook("module_utils")
    probe = getattr(module_utils, "tensorflow", None)
    if probe is None or not hasattr(probe, "_available") or "tensorflow" in sys.modules or probe._available is not None:
        yield
        return
    probe._available = False
    try:
        yield
    finally:
        probe._available = None


def array_data_adapter():
    """Keras' ArrayDataAdapter class, or None where it has moved."""
    module = hook("array_data_adapter")
    return None if module is None else module.ArrayDataAdapter
