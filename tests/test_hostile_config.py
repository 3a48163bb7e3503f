"""Property tests of the knobs' one declaration (Hypothesis): whatever text a user gives `--set`, the answer is a
Config or a one-line ConfigError naming the key, never another exception; a Config survives its JSON."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistlab.core import config as config_lib
from mnistlab.core.config import Config
from mnistlab.core.errors import ConfigError

KEYS = [name for name in config_lib.VALID_KEYS]
QUICK = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values as users type them: numbers of every size, lists, words, and text that is none of these.
number_text = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e309",
            "-0",
            "0x10",
            "1_000",
            "",
            " ",
            "none",
            "true",
            "3x3",
            "[3,3]",
            "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
        ]
    ),
)
assignment = st.one_of(
    st.tuples(st.sampled_from(KEYS), st.one_of(number_text, st.text(max_size=20))).map(
        lambda pair: f"{pair[0]}={pair[1]}"
    ),
    st.text(max_size=30),
)


@QUICK
@given(family=st.sampled_from(config_lib.FAMILIES), assignments=st.lists(assignment, max_size=4))
def test_any_set_text_gives_a_config_or_a_config_error(family, assignments):
    try:
        config = Config(family=family).with_overrides(assignments)
    except ConfigError as error:
        message = str(error)
        assert message and "\n" not in message and len(message) < 2000
        return
    for spec in config_lib.KNOBS.values():  # what was accepted is within its declaration
        value = getattr(config, spec.name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                assert math.isfinite(item) and spec.within_bounds(item), (spec.name, item)


def _value(spec):
    """A strategy of valid values for one knob, from its declaration."""
    if spec.choices:
        return st.sampled_from(spec.choices)
    if spec.base_type is bool:
        return st.booleans()
    low = spec.minimum if spec.minimum is not None else spec.exclusive_minimum
    high = spec.maximum if spec.maximum is not None else spec.exclusive_maximum
    if spec.is_pair or spec.is_list:
        item = st.integers(min_value=int(low or 0), max_value=min(int(high), 6) if high is not None else 6)
        return (
            st.tuples(item, item)
            if spec.is_pair
            else st.lists(item, min_size=max(spec.min_items, 1), max_size=3).map(tuple)
        )
    if spec.base_type is int:
        return st.integers(
            min_value=int(low if low is not None else 0), max_value=int(min(high, 10**6)) if high is not None else 10**6
        )
    if spec.base_type is float:
        return st.floats(
            min_value=low,
            max_value=high,
            exclude_min=spec.exclusive_minimum is not None,
            exclude_max=spec.exclusive_maximum is not None,
            allow_nan=False,
        )
    return st.just(spec.default)


@st.composite
def configs(draw):
    family = draw(st.sampled_from(config_lib.FAMILIES))
    values = {"family": family}
    for spec in config_lib.KNOBS.values():
        if spec.name in ("family", "dataset", "pool_after") or (spec.family and spec.family != family):
            continue
        if draw(st.booleans()):
            values[spec.name] = draw(_value(spec))
    try:
        return Config(**values)
    except ConfigError:  # two knobs that do not go together (momentum >= 1 for sgd, a loss and its output)
        return Config(family=family)


@QUICK
@given(config=configs())
def test_a_config_is_what_its_json_says(config):
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))).config_hash() == config.config_hash()


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400"])
def test_no_float_knob_takes_a_number_that_is_not_finite(text):
    for spec in config_lib.KNOBS.values():
        if spec.base_type is float:
            with pytest.raises(ConfigError):
                Config().with_overrides([f"{spec.name}={text}"])


def test_every_numeric_knob_declares_a_maximum():
    for spec in config_lib.KNOBS.values():
        if spec.base_type in (int, float) or spec.is_pair or spec.is_list:
            assert spec.maximum is not None or spec.exclusive_maximum is not None, spec.name
        if spec.is_list:
            assert spec.max_items is not None, spec.name


@pytest.mark.parametrize("name", ["listing-1.3.2", "listing-1.4.1", "listing-1.5.1"])
def test_the_parameter_estimate_is_the_books_count(name):
    """The bound on a model's size is computed from the knobs; for the listings it is the book's own count."""
    from mnistlab.core import presets

    expected = {"listing-1.3.2": 269_322, "listing-1.4.1": 80_266, "listing-1.5.1": 75_530}[name]  # the book's Listings
    assert presets.get(name).build_config().parameter_estimate() == expected


def test_the_parameter_estimate_is_what_keras_builds():
    from mnistlab.ml import models

    for values in (
        dict(family="cnn", batch_norm=True, padding="same", filters=(32, 64, 128), kernel_size=(3, 5)),
        dict(family="cnn", filters=(8, 8), strides=(2, 2), padding="same", pool_after=(0,), pooling="average"),
        dict(family="rnn", cell="lstm", rnn_units=(128, 64), bidirectional=True),
        dict(family="rnn", cell="gru", rnn_units=(16, 8)),
        dict(family="mlp", hidden_units=(32, 16, 8)),
    ):
        config = Config(**values)
        assert config.parameter_estimate() == models.build_model(config, compile=False).count_params(), values


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        (
            ["family=cnn", "kernel_size=28", "pool_after="],
            "kernel_size",
            "conv layer 2 leaves the 28x28 image no pixels",
        ),
        (
            ["family=cnn", "kernel_size=28"],
            "pool_size",
            "the pooling after conv layer 1 leaves the 28x28 image no pixels",
        ),
        (["family=cnn", "pool_size=28"], "pool_size", "the pooling after conv layer 1"),
        (["hidden_units=" + ",".join(["8192"] * 16)], "hidden_units", "parameters; mnistlab builds at most 50,000,000"),
        (["family=rnn", "cell=lstm", "rnn_units=" + ",".join(["8192"] * 16)], "rnn_units", "parameters"),
    ],
)
def test_a_model_that_cannot_be_built_or_held_is_refused_naming_the_knob(overrides, field, words):
    with pytest.raises(ConfigError) as refused:
        Config().with_overrides(overrides)
    assert refused.value.field == field and words in str(refused.value), str(refused.value)


def test_a_long_value_is_not_echoed_whole():
    with pytest.raises(ConfigError) as refused:
        Config().with_overrides(["epochs=" + "9" * 5000])
    assert len(str(refused.value)) < 200, len(str(refused.value))
