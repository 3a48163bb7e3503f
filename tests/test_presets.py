import pytest

from mnistlab import presets
from mnistlab.errors import ConfigError


def test_three_listings_and_26_table_rows():
    names = list(presets.all_presets())
    assert [n for n in names if n.startswith("listing-")] == ["listing-1.3.2", "listing-1.4.1", "listing-1.5.1"]
    assert len([n for n in names if n.startswith("table-1.3.2-row")]) == 18
    assert len([n for n in names if n.startswith("table-1.4.1-row")]) == 4
    assert len([n for n in names if n.startswith("table-1.5.1-row")]) == 4


def test_rows_carry_the_books_accuracies():
    tables = presets.book()["tables"]
    for number, table in tables.items():
        for index, row in enumerate(table["rows"], start=1):
            preset = presets.get(f"table-{number}-row{index}")
            settings = dict(zip(table["columns"], row))
            assert preset.book_train_accuracy == settings["train_accuracy"]
            assert preset.book_test_accuracy == settings["test_accuracy"]


def test_every_preset_is_a_valid_config():
    for preset in presets.all_presets().values():
        config = preset.build_config()
        if preset.table:
            assert config.epochs == presets.book()["tables"][preset.table.removeprefix("table-")]["epochs"]


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
