"""Choosing the Keras backend, which Keras fixes when it is first imported.

`activate()` must run before anything imports keras; the CLI calls it right
after it has read the config. Python users can set KERAS_BACKEND themselves.
"""

import importlib.util
import os
import sys
import warnings

from mnistlab.core import paths
from mnistlab.core.config import BACKENDS
from mnistlab.core.errors import ConfigError, MissingExtra
from mnistlab.ml import compat

# What `--backend auto` picks per model family on CPU: the fastest in
# benchmarks/bench.py (BENCHMARKS.md has the measurements).
AUTO_BACKEND = {"mlp": "jax", "cnn": "tensorflow", "rnn": "jax"}
FAMILY_NAMES = {"mlp": "MLP", "cnn": "CNN", "rnn": "RNN"}
# JAX's persistent compilation cache (see `_keep_compiled_programs`): programs that took at least this long to
# compile are kept, up to this many bytes in all (the least recently used go first).
COMPILED_MIN_SECONDS = 0.2
COMPILED_MAX_BYTES = 512 * 2**20


def choose(requested, family, in_this_process=True):
    """(backend, why) for a run of FAMILY: Keras' own conventions, in order.

    1. an explicit backend (`--backend`, or `backend` in the config);
    2. in this process, once Keras is imported, the backend it runs on;
    3. KERAS_BACKEND, when set;
    4. auto: the family's fastest measured backend.
    """
    if requested not in (None, "auto"):
        if requested not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
        return requested, "requested"
    if in_this_process and "keras" in sys.modules:
        return sys.modules["keras"].backend.backend(), "Keras is already running it in this process"
    from_environment = os.environ.get("KERAS_BACKEND")
    if from_environment:
        if from_environment not in BACKENDS or from_environment == "auto":
            raise ConfigError(
                f"KERAS_BACKEND={from_environment} is not a backend mnistlab runs on; set it to one of jax, tensorflow, torch or unset it"
            )
        return from_environment, "KERAS_BACKEND"
    return AUTO_BACKEND[family], f"auto: fastest measured for the {FAMILY_NAMES[family]}"


def resolve(requested, family, in_this_process=True):
    """The backend a run of FAMILY uses (see `choose`)."""
    return choose(requested, family, in_this_process)[0]


def pin(config, in_this_process=True):
    """The config with backend 'auto' replaced by the backend the run will use."""
    return config.replace(backend=resolve(config.backend, config.family, in_this_process))


def installed(module):
    """Whether MODULE can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a broken or hidden package counts as missing
        return False


def activate(name):
    """Make `name` the Keras backend of this process; fail clearly if Keras already runs another."""
    if not installed(name):
        if name == "torch":
            raise MissingExtra("the torch backend", "torch")
        raise ConfigError(f"backend {name} is not installed; run the README's setup command or pip install {name}")
    if "keras" in sys.modules:
        import keras

        running = keras.backend.backend()
        if running != name:
            raise ConfigError(
                f"Keras is already running on {running} in this process; start a new process with KERAS_BACKEND={name} to use {name}"
            )
        return name
    os.environ["KERAS_BACKEND"] = name
    if name == "jax":
        _keep_compiled_programs()
    # TensorFlow prints pages of start-up logs on import; keep errors only.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return name


def _keep_compiled_programs():
    """Turn on JAX's persistent compilation cache, in the data cache, before JAX is imported.

    Every training runs in a process apart (jobs.runner), and JAX compiles each new network's train step; on
    mnist-mini's short epochs compiling is most of a run's CPU. Kept, the next seed, repeat or reproduction
    of the same network loads the program instead. A program depends only on
    the network, its shapes and JAX's version, which are the cache's key, so a run is the same either way.
    The user's own JAX_* settings win (JAX_ENABLE_COMPILATION_CACHE=false turns it off). The size limit makes
    JAX lock the cache while it reads or writes (filelock), so parallel runs share it safely.
    """
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(paths.compiled_cache()))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(COMPILED_MIN_SECONDS))
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(COMPILED_MAX_BYTES))


def bf16_supported(cpuinfo=None):
    """Whether bf16 mixed precision can be fast here: a GPU, or a CPU with bf16 instructions.

    `cpuinfo`: the text of /proc/cpuinfo (read from the machine when not given).
    """
    import pathlib
    import platform

    if cpuinfo is None:
        if pathlib.Path("/dev/nvidia0").exists() or platform.machine() not in ("x86_64", "AMD64"):
            return True
        try:
            cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
        except OSError:
            return True  # cannot tell: let the user decide
    flags = {
        flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()
    }
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def check_precision(config):
    if config.precision == "bf16" and not bf16_supported():
        raise ConfigError(
            "--precision bf16 needs a GPU or a CPU with bf16 instructions (avx512_bf16 or amx_bf16), which this machine lacks; on it bf16 is emulated and slower: use float32"
        )


def seed_everything(seed):
    """Seed Python, NumPy and the backend, and make TensorFlow's kernels deterministic."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        return
    # keras.utils.set_random_seed would also import TensorFlow (two seconds and
    # a screen of logs) just to seed it, though no TensorFlow code runs on the
    # other backends. compat does the same without that import.
    import random

    import numpy as np

    if not compat.seed_without_tensorflow(seed):
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


def saving_without_tensorflow_probe():
    """Save a JAX or torch model without Keras importing TensorFlow to look for TF objects.

    Keras' serializer asks "is TensorFlow available?" to recognise TF types,
    which a JAX or torch model never holds; answering imports TensorFlow (two
    seconds and a screen of logs). For the duration of the save only, the
    answer is "no"; where TensorFlow is already imported, nothing changes.
    """
    return compat.tensorflow_probe_off()


def fit_inputs(x, y, batch_size, shuffle=True):
    """What `fit` (or `validation_data`) gets for in-memory arrays: the arrays, or on TensorFlow
    Keras' own tf.data pipeline for them with tf.data's autotuner off.

    Why: on TensorFlow, Keras iterates a tf.data pipeline made from the
    arrays, with a new iterator every epoch, and dropping the old one waits
    for the autotuner's background thread, whose sleep grows with the
    iterator's age: on the CNN listing, every epoch after the first began with
    seconds of all threads idle (BENCHMARKS.md has the profile). Batches of arrays already in
    memory need no tuning. The pipeline is built here with the very adapter
    Keras would use, so the batches and their order are the same; it is this
    run's object, so nothing process-wide changes. Returns (inputs, targets,
    batch_size) for fit's x, y and batch_size.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return x, y, batch_size
    ArrayDataAdapter = compat.array_data_adapter()
    if ArrayDataAdapter is None:
        warnings.warn(
            "mnistlab: Keras' ArrayDataAdapter has moved; TensorFlow epochs may stall for seconds each (tf.data autotuner). Please report this with your Keras version.",
            RuntimeWarning,
            stacklevel=2,
        )
        return x, y, batch_size
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = ArrayDataAdapter(x, y, batch_size=batch_size, shuffle=shuffle).get_tf_dataset().with_options(options)
    # Keras cannot count the batches of this pipeline itself; told, it shows a true progress bar.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-len(x) // batch_size)))
    return dataset, None, None


def library_versions():
    """Versions of what produced a run, for metrics.json."""
    import platform

    import keras
    import numpy

    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": numpy.__version__}
    backend_name = keras.backend.backend()
    module = importlib.import_module(backend_name)
    versions[backend_name] = module.__version__
    return versions
