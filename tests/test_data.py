"""Readers on good and corrupt inputs; downloads verified and written atomically."""

import gzip
import hashlib
import io
import struct
import urllib.request

import numpy as np
import pytest

from conftest import write_npz
from mnistlab.core import paths
from mnistlab.core.errors import DataError, DatasetUnavailable
from mnistlab.ml import data


def idx_images(images):
    return struct.pack(">IIII", data.IDX_IMAGES_MAGIC, len(images), 28, 28) + images.astype(np.uint8).tobytes()


def idx_labels(labels):
    return struct.pack(">II", data.IDX_LABELS_MAGIC, len(labels)) + labels.astype(np.uint8).tobytes()


def write_idx_dir(directory, dataset, compress=True, **overrides):
    directory.mkdir(parents=True, exist_ok=True)
    payloads = {
        "train-images-idx3-ubyte": idx_images(dataset.x_train),
        "train-labels-idx1-ubyte": idx_labels(dataset.y_train),
        "t10k-images-idx3-ubyte": idx_images(dataset.x_test),
        "t10k-labels-idx1-ubyte": idx_labels(dataset.y_test),
    }
    payloads.update(overrides)
    for stem, payload in payloads.items():
        if compress:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(payload))
        else:
            (directory / stem).write_bytes(payload)
    return directory


def test_mini_is_real_balanced_digits(mini):
    assert mini.x_train.shape == (2400, 28, 28) and mini.x_test.shape == (600, 28, 28)
    assert mini.x_train.dtype == np.uint8
    assert data.label_counts(mini.y_train) == {d: 240 for d in range(10)}
    assert 20 < mini.x_train.mean() < 60  # MNIST's mean pixel is about 33


@pytest.mark.parametrize("compress", [True, False])
def test_idx_directory_round_trip(tmp_path, small_dataset, compress):
    directory = write_idx_dir(tmp_path / "idx", small_dataset, compress=compress)
    loaded = data.load_dataset(str(directory))
    np.testing.assert_array_equal(loaded.x_train, small_dataset.x_train)
    np.testing.assert_array_equal(loaded.y_test, small_dataset.y_test)
    assert loaded.content_hash() == small_dataset.content_hash()


def test_npz_round_trip(tmp_path, small_dataset):
    loaded = data.load_dataset(str(write_npz(tmp_path / "d.npz", small_dataset)))
    assert loaded.content_hash() == small_dataset.content_hash()


def test_truncated_gzip(tmp_path, small_dataset):
    directory = write_idx_dir(tmp_path / "idx", small_dataset)
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        data.load_dataset(str(directory))


def test_wrong_magic(tmp_path, small_dataset):
    directory = write_idx_dir(
        tmp_path / "idx", small_dataset, **{"t10k-images-idx3-ubyte": idx_labels(small_dataset.y_test)}
    )
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: wrong magic number 2049"):
        data.load_dataset(str(directory))


def test_truncated_body(tmp_path, small_dataset):
    payload = idx_images(small_dataset.x_train)[:-100]
    directory = write_idx_dir(tmp_path / "idx", small_dataset, compress=False, **{"train-images-idx3-ubyte": payload})
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load_dataset(str(directory))


def test_count_mismatch(tmp_path, small_dataset):
    directory = write_idx_dir(
        tmp_path / "idx", small_dataset, **{"train-labels-idx1-ubyte": idx_labels(small_dataset.y_train[:-5])}
    )
    with pytest.raises(DataError, match="595 train labels for 600 images"):
        data.load_dataset(str(directory))


def test_label_out_of_range(tmp_path, small_dataset):
    labels = small_dataset.y_test.copy()
    labels[3] = 12
    directory = write_idx_dir(tmp_path / "idx", small_dataset, **{"t10k-labels-idx1-ubyte": idx_labels(labels)})
    with pytest.raises(DataError, match="labels must lie in 0..9"):
        data.load_dataset(str(directory))


def test_wrong_image_size(tmp_path, small_dataset):
    payload = struct.pack(">IIII", data.IDX_IMAGES_MAGIC, 2, 32, 32) + bytes(2 * 32 * 32)
    directory = write_idx_dir(tmp_path / "idx", small_dataset, **{"t10k-images-idx3-ubyte": payload})
    with pytest.raises(DataError, match="32x32, expected 28x28"):
        data.load_dataset(str(directory))


def test_missing_idx_file(tmp_path, small_dataset):
    directory = write_idx_dir(tmp_path / "idx", small_dataset)
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte"):
        data.load_dataset(str(directory))


@pytest.mark.parametrize(
    "replace, message",
    [
        (dict(x_train=np.zeros((5, 28, 27), np.uint8), y_train=np.zeros(5, np.int64)), "x_train has shape"),
        (dict(x_test=np.full((600, 28, 28), 300, np.int32)), "expected uint8 pixels"),
        (dict(y_train=np.zeros((600, 10), np.float32)), "1-D integer label vector"),
    ],
)
def test_bad_npz_arrays(tmp_path, small_dataset, replace, message):
    with pytest.raises(DataError, match=message):
        data.load_dataset(str(write_npz(tmp_path / "bad.npz", small_dataset, **replace)))


def test_npz_missing_keys_and_garbage(tmp_path):
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DataError, match="missing arrays"):
        data.load_dataset(str(tmp_path / "partial.npz"))
    (tmp_path / "garbage.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="not a readable .npz"):
        data.load_dataset(str(tmp_path / "garbage.npz"))


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="unknown dataset 'mnits'"):
        data.load_dataset("mnits")


# --------------------------------------------------------------------------
# Downloads, with urlopen replaced by a fake server


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def serve(monkeypatch, payloads):
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return FakeResponse(payloads[url])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return requested


def npz_bytes(dataset):
    buffer = io.BytesIO()
    np.savez(buffer, x_train=dataset.x_train, y_train=dataset.y_train, x_test=dataset.x_test, y_test=dataset.y_test)
    return buffer.getvalue()


def test_mnist_download_verified_then_cached(monkeypatch, small_dataset):
    payload = npz_bytes(small_dataset)
    monkeypatch.setattr(data, "MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    requested = serve(monkeypatch, {data.MNIST_URL: payload})
    first = data.load_dataset("mnist")
    second = data.load_dataset("mnist")  # offline from the cache
    assert requested == [data.MNIST_URL]
    assert first.name == "mnist" and first.content_hash() == second.content_hash() == small_dataset.content_hash()
    assert (paths.data_cache() / "mnist.npz").read_bytes() == payload


def test_mnist_bad_checksum_writes_nothing(monkeypatch, small_dataset):
    serve(monkeypatch, {data.MNIST_URL: npz_bytes(small_dataset)})
    with pytest.raises(DataError, match="sha256 mismatch"):
        data.load_dataset("mnist")
    cache = paths.data_cache()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_corrupt_cached_mnist_is_reported(small_dataset):
    paths.data_cache().mkdir(parents=True)
    (paths.data_cache() / "mnist.npz").write_bytes(b"tampered")
    with pytest.raises(DataError, match="sha256 mismatch.*delete it"):
        data.load_dataset("mnist")


def test_offline_mnist_is_unavailable_and_auto_falls_back():
    with pytest.raises(DatasetUnavailable, match="cannot download"):
        data.load_dataset("mnist")
    notices = []
    dataset = data.load_dataset("auto", notice=notices.append)
    assert dataset.name == "mnist-mini" and len(notices) == 1 and "mnist-mini" in notices[0]


def test_fashion_mnist_download_checks_content(monkeypatch, tmp_path, small_dataset):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "no-debian-here")
    raw = {
        "train-images-idx3-ubyte.gz": idx_images(small_dataset.x_train),
        "train-labels-idx1-ubyte.gz": idx_labels(small_dataset.y_train),
        "t10k-images-idx3-ubyte.gz": idx_images(small_dataset.x_test),
        "t10k-labels-idx1-ubyte.gz": idx_labels(small_dataset.y_test),
    }
    monkeypatch.setattr(
        data, "FASHION_FILES", {name: hashlib.sha256(content).hexdigest() for name, content in raw.items()}
    )
    payloads = {data.KERAS_MIRROR + name: gzip.compress(content) for name, content in raw.items()}
    corrupted = dict(payloads)
    corrupted[data.KERAS_MIRROR + "t10k-labels-idx1-ubyte.gz"] = gzip.compress(b"wrong")
    serve(monkeypatch, corrupted)
    with pytest.raises(DataError, match="sha256 mismatch"):
        data.load_dataset("fashion-mnist")
    assert not (paths.data_cache() / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    serve(monkeypatch, payloads)
    dataset = data.load_dataset("fashion-mnist")
    assert dataset.name == "fashion-mnist" and dataset.content_hash() == small_dataset.content_hash()


def test_debian_fashion_mnist_is_used_when_present(monkeypatch, tmp_path, small_dataset):
    directory = write_idx_dir(tmp_path / "debian", small_dataset)
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", directory)
    with pytest.raises(DataError, match="content sha256 mismatch"):  # not the official files
        data.load_dataset("fashion-mnist")


def test_split_is_seeded_and_disjoint():
    x = np.arange(1000)
    y = np.arange(1000) % 10
    a = data.split_validation(x, y, 0.1, seed=1)
    b = data.split_validation(x, y, 0.1, seed=1)
    c = data.split_validation(x, y, 0.1, seed=2)
    assert len(a[2]) == 100 and len(a[0]) == 900
    np.testing.assert_array_equal(a[2], b[2])
    assert not np.array_equal(a[2], c[2])
    assert not set(a[0]) & set(a[2])


def test_prepare_images_layouts(mini):
    for shape in [(784,), (28, 28, 1), (28, 28)]:
        prepared = data.prepare_images(mini.x_test[:4], shape)
        assert prepared.shape == (4, *shape) and prepared.dtype == np.float32
        assert 0.0 <= prepared.min() and prepared.max() <= 1.0
    np.testing.assert_array_equal(
        data.one_hot([2, 0]), [[0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]]
    )


@pytest.mark.skipif(
    not (data.DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist_from_debian():
    dataset = data.load_dataset("fashion-mnist")
    assert dataset.x_train.shape == (60000, 28, 28) and dataset.x_test.shape == (10000, 28, 28)
    assert data.label_counts(dataset.y_train) == {d: 6000 for d in range(10)}


def test_class_names_follow_the_dataset():
    assert (
        data.class_names("fashion-mnist")[0] == "T-shirt/top" and data.class_names("fashion-mnist")[9] == "Ankle boot"
    )
    assert data.class_names("mnist-mini") == tuple("0123456789")
