"""Choosing the backend (Keras' conventions), the bf16 detector, and the TensorFlow probe around saving."""

import os
import sys

import pytest

from mnistlab.core.config import Config
from mnistlab.core.errors import ConfigError
from mnistlab.ml import backend

# Flag lines as /proc/cpuinfo prints them (trimmed): an AMD EPYC without bf16, a Sapphire Rapids with it.
EPYC_ROME = "processor\t: 0\nflags\t\t: fpu vme sse sse2 avx avx2 fma bmi2 sha_ni\nbugs\t\t: sysret_ss_attrs\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
# A line that merely mentions the name is not a flag.
MISLEADING = "model name\t: made-up CPU with avx512_bf16 in its name\nflags\t\t: fpu sse2 avx2\n"


@pytest.mark.parametrize("cpuinfo, expected", [(EPYC_ROME, False), (SAPPHIRE_RAPIDS, True), (MISLEADING, False)])
def test_bf16_detector_reads_the_flags(cpuinfo, expected):
    assert backend.bf16_supported(cpuinfo) is expected


def test_backend_order_flag_then_environment_then_auto(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend.choose("auto", "cnn", in_this_process=False) == ("tensorflow", "auto: fastest measured for the CNN")
    assert backend.choose("auto", "mlp", in_this_process=False)[0] == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert backend.choose("auto", "cnn", in_this_process=False) == ("torch", "KERAS_BACKEND")
    assert backend.choose("jax", "cnn", in_this_process=False) == ("jax", "requested")
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    with pytest.raises(ConfigError, match="KERAS_BACKEND=theano"):
        backend.choose("auto", "mlp", in_this_process=False)


def test_in_this_process_auto_means_the_running_backend():
    import keras

    assert backend.pin(Config(family="cnn")).backend == keras.backend.backend() == "jax"


def test_saving_probe_is_answered_only_during_the_block():
    from keras.src.utils import module_utils

    if "tensorflow" in sys.modules or module_utils.tensorflow._available is not None:
        pytest.skip("TensorFlow was already probed in this process")
    with backend.saving_without_tensorflow_probe():
        assert module_utils.tensorflow.available is False
    assert module_utils.tensorflow._available is None, "the override must not outlive the save"


def test_jax_keeps_its_compiled_programs_in_the_data_cache_unless_told_otherwise(tmp_path):
    """Choosing JAX turns on its persistent compilation cache in the data cache (bounded, so file-locked); a user's
    own JAX settings win. Asked of JAX itself, in a fresh process (this one's JAX is configured by conftest)."""
    import subprocess
    import sys

    code = (
        "from mnistlab.ml import backend; backend.activate('jax'); import jax; "
        "print(jax.config.jax_compilation_cache_dir, jax.config.jax_compilation_cache_max_size, "
        "jax.config.jax_persistent_cache_min_compile_time_secs)"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JAX_", "KERAS_BACKEND"))}
    env["MNISTLAB_DATA"] = str(tmp_path / "data")
    said = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert said == [str(tmp_path / "data" / "jax-compiled"), str(512 * 2**20), "0.2"]
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "mine")
    said = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert said[0] == str(tmp_path / "mine")
