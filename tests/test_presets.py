import pytest

from mnistlab.core import presets
from mnistlab.core.errors import ConfigError


def test_three_listings_and_26_table_rows():
    names = list(presets.all_presets())
    assert [n for n in names if n.startswith("listing-")] == ["listing-1.3.2", "listing-1.4.1", "listing-1.5.1"]
    assert len([n for n in names if n.startswith("table-1.3.2-row")]) == 18
    assert len([n for n in names if n.startswith("table-1.4.1-row")]) == 4
    assert len([n for n in names if n.startswith("table-1.5.1-row")]) == 4


# Spot checks against the book as printed (Atienza, ch. 1), written here by hand, not read
# from the JSON the presets are generated from: a shifted row or swapped column fails.
BOOK_ROWS = [
    # preset, settings the book prints, book train %, book test %
    (
        "table-1.3.2-row1",
        dict(hidden_units=(256, 256), activation="linear", optimizer="sgd", dropout_rate=0.0),
        93.65,
        92.5,
    ),
    (
        "table-1.3.2-row4",
        dict(hidden_units=(256, 256), activation="relu", optimizer="sgd", dropout_rate=0.0),
        99.93,
        98.0,
    ),
    (
        "table-1.3.2-row16",
        dict(hidden_units=(256, 256), activation="relu", optimizer="adam", dropout_rate=0.45),
        99.39,
        98.5,
    ),
    (
        "table-1.3.2-row18",
        dict(hidden_units=(128, 128), activation="relu", optimizer="adam", dropout_rate=0.45),
        98.7,
        97.7,
    ),
    ("table-1.4.1-row1", dict(filters=(64, 64, 64), optimizer="sgd", dropout_rate=0.2), 97.76, 98.5),
    ("table-1.4.1-row4", dict(filters=(64, 64, 64), optimizer="adam", dropout_rate=0.4), 99.64, 99.3),
    ("table-1.5.1-row1", dict(rnn_units=(256,), optimizer="sgd", dropout_rate=0.2), 97.26, 98.0),
    ("table-1.5.1-row4", dict(rnn_units=(512,), optimizer="sgd", dropout_rate=0.2), 97.88, 98.3),
]


@pytest.mark.parametrize("name, settings, train, test", BOOK_ROWS)
def test_rows_match_the_book_as_printed(name, settings, train, test):
    preset = presets.get(name)
    config = preset.build_config()
    assert {key: getattr(config, key) for key in settings} == settings
    assert (preset.book_train_accuracy, preset.book_test_accuracy) == (train, test)


def test_epochs_and_batch_are_the_books():
    # MLP and RNN listings train 20 epochs, the CNN 10, all with batches of 128 (the chapter's listings).
    expected = {"mlp": 20, "cnn": 10, "rnn": 20}
    for preset in presets.all_presets().values():
        config = preset.build_config()
        assert (config.epochs, config.batch_size) == (expected[config.family], 128), preset.name


def test_listing_row_of_table_132_is_listing_132():
    row = presets.get("table-1.3.2-row16").build_config()
    listing = presets.get("listing-1.3.2").build_config()
    assert row == listing


def test_table_132_regularizers_and_relu_column():
    assert presets.get("table-1.3.2-row1").build_config().activation == "linear"
    assert presets.get("table-1.3.2-row2").build_config().kernel_l2 == 0.001
    assert presets.get("table-1.3.2-row2").build_config().dropout_rate == 0
    assert presets.get("table-1.3.2-row7").build_config().dropout_rate == 0.5
    assert presets.get("table-1.3.2-row17").build_config().optimizer == "rmsprop"


def test_three_hidden_reading_is_runnable():
    listing_reading = presets.get("table-1.3.2-row12").build_config()
    three_hidden = presets.get("table-1.3.2-row12@three-hidden").build_config()
    assert listing_reading.hidden_units == (512, 1024)
    assert three_hidden.hidden_units == (512, 1024, 512)
    assert len(presets.table_rows("table-1.3.2", "three-hidden")) == 18


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="did you mean listing-1.3.2"):
        presets.get("listing-1.3.3")
    with pytest.raises(ConfigError, match="unknown table"):
        presets.table_rows("table-9")


def test_a_config_that_changed_its_family_leaves_its_preset():
    """`train listing-1.3.2 --set family=cnn` builds no MLP of the book: its run is a custom setup, not the listing."""
    from mnistlab.core.config import Config

    cnn = presets.configure("listing-1.3.2", ["family=cnn"])
    assert cnn.family == "cnn" and presets.kept("listing-1.3.2", cnn) is None
    assert presets.kept("listing-1.3.2", presets.configure("listing-1.3.2", ["hidden_units=64"])) == "listing-1.3.2"
    assert presets.kept(None, Config()) is None
    assert presets.kept("a-preset-of-an-older-mnistlab", Config()) == "a-preset-of-an-older-mnistlab"
