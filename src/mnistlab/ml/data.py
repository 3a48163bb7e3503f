"""MNIST-style datasets: download, verify, read, split and reshape.

Every dataset is four uint8/int arrays: 28x28 images and labels 0-9 for a
training and a test split. Readers check everything a corrupt or foreign file
can get wrong and raise `DataError` with one line that names the file.

This module does not import Keras: the CLI reads data before it has chosen a
backend.
"""

import dataclasses
import difflib
import gzip
import hashlib
import os
import pathlib
import struct
import sys
import urllib.error
import urllib.request
import zlib

import numpy as np

from mnistlab.core import fileio, paths
from mnistlab.core.errors import DataError, DatasetUnavailable

IMAGE_SIZE = 28
NUM_CLASSES = 10
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049

KERAS_MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_URL = KERAS_MIRROR + "mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# Fashion-MNIST is checked on the *uncompressed* idx bytes: Debian re-gzips the
# upstream files (so the .gz hashes differ) but the content is identical.
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEBIAN_FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
MINI_PATH = pathlib.Path(__file__).parent / "datasets" / "mnist-mini.npz"
BUILTIN_NAMES = ("mnist", "fashion-mnist", "mnist-mini")
DOWNLOAD_TIMEOUT_S = 30


@dataclasses.dataclass
class Dataset:
    """Train and test arrays of an MNIST-style dataset, as uint8 images and int labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""

    def content_hash(self):
        """sha256 over the four arrays: two datasets with equal hashes hold equal data."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def summary(self):
        return f"{self.name}: {len(self.x_train)} train / {len(self.x_test)} test images ({self.source})"


# --------------------------------------------------------------------------
# Readers


def _read_maybe_gzip(path):
    raw = fileio.read_bytes(path, DataError)
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: corrupt or truncated gzip ({error}); delete it and download it again") from None
    return raw


def _parse_idx(path, payload, magic, ndim):
    header_size = 4 + 4 * ndim
    if len(payload) < header_size:
        raise DataError(f"{path}: too short for an idx header ({len(payload)} bytes)")
    found_magic = struct.unpack(">I", payload[:4])[0]
    if found_magic != magic:
        kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
        raise DataError(
            f"{path}: wrong magic number {found_magic} (expected {magic} for idx {kind}); is this the right file?"
        )
    dims = struct.unpack(f">{ndim}I", payload[4:header_size])
    expected = int(np.prod(dims))
    body = payload[header_size:]
    if len(body) != expected:
        raise DataError(
            f"{path}: header promises {expected} bytes for shape {dims} but the file holds {len(body)}; the file is truncated or corrupt"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def read_idx_images(path):
    images = _parse_idx(path, _read_maybe_gzip(path), IDX_IMAGES_MAGIC, 3)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path}: images are {images.shape[1]}x{images.shape[2]}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
    return images


def read_idx_labels(path):
    labels = _parse_idx(path, _read_maybe_gzip(path), IDX_LABELS_MAGIC, 1)
    _check_labels(path, labels)
    return labels


def _check_labels(path, labels):
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{path}: labels must lie in 0..{NUM_CLASSES - 1}, found {labels.min()}..{labels.max()}")


def _find_idx(directory, key):
    for stem in IDX_NAMES[key]:
        for candidate in (directory / f"{stem}.gz", directory / stem):
            if candidate.exists():
                return candidate
    raise DataError(
        f"{directory}: no {IDX_NAMES[key][0]}[.gz] file; an idx dataset directory needs the four standard MNIST files"
    )


def read_idx_dir(directory, name=None):
    directory = pathlib.Path(directory)
    paths = {key: _find_idx(directory, key) for key in IDX_NAMES}
    arrays = {key: (read_idx_images if key.startswith("x") else read_idx_labels)(path) for key, path in paths.items()}
    return _validated(name or directory.name, arrays, paths, source=str(directory))


def read_npz(path, name=None):
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in IDX_NAMES if key not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {missing}; a dataset .npz needs x_train, y_train, x_test, y_test"
                )
            arrays = {key: archive[key] for key in IDX_NAMES}
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except DataError:
        raise
    except Exception as error:  # zipfile.BadZipFile, ValueError, EOFError, OSError...
        raise DataError(f"{path}: not a readable .npz archive ({type(error).__name__}: {error})") from None
    for key in ("x_train", "x_test"):
        array = arrays[key]
        if array.ndim == 4 and array.shape[-1] == 1:
            arrays[key] = array = array[..., 0]
        if array.ndim != 3 or array.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{path}: {key} has shape {array.shape}, expected (N, {IMAGE_SIZE}, {IMAGE_SIZE})")
        if array.dtype != np.uint8:
            if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 255:
                raise DataError(f"{path}: {key} has dtype {array.dtype}; expected uint8 pixels 0..255")
            arrays[key] = array.astype(np.uint8)
    for key in ("y_train", "y_test"):
        array = arrays[key]
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise DataError(
                f"{path}: {key} has shape {array.shape} and dtype {array.dtype}; expected a 1-D integer label vector"
            )
        _check_labels(f"{path} ({key})", array)
    return _validated(name or path.stem, arrays, {key: path for key in arrays}, source=str(path))


def _validated(name, arrays, paths, source):
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(images) != len(labels):
            raise DataError(
                f"{paths[f'y_{split}']}: {len(labels)} {split} labels for {len(images)} images; the image and label files do not belong together"
            )
        if len(images) == 0:
            raise DataError(f"{paths[f'x_{split}']}: the {split} split is empty")
    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(arrays["x_train"]),
        y_train=np.asarray(arrays["y_train"], dtype=np.int64),
        x_test=np.ascontiguousarray(arrays["x_test"]),
        y_test=np.asarray(arrays["y_test"], dtype=np.int64),
        source=source,
    )


def atomic_write_npz(path, **arrays):
    with fileio.atomic_path(path) as temp_path:
        np.savez_compressed(temp_path, **arrays)


# --------------------------------------------------------------------------
# Downloads


def sha256_of(payload):
    return hashlib.sha256(payload).hexdigest()


def download(url, destination, check):
    """Download `url` to `destination` atomically after `check(payload)` passes.

    `check` raises DataError on a bad payload; nothing is written then.
    """
    destination = pathlib.Path(destination)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            print(f"Downloading {url} -> {destination}", file=sys.stderr)
            payload = response.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DatasetUnavailable(
            f"cannot download {url} ({reason}); place the file at {destination} to work offline"
        ) from None
    check(payload)
    fileio.write_bytes(destination, payload)
    return destination


def _check_sha256(expected, label):
    def check(payload):
        found = sha256_of(payload)
        if found != expected:
            raise DataError(
                f"{label}: sha256 mismatch (got {found}, expected {expected}); the download is corrupt, try again"
            )

    return check


def _check_gz_content(expected, label):
    def check(payload):
        try:
            content = gzip.decompress(payload) if payload[:2] == b"\x1f\x8b" else payload
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{label}: corrupt gzip ({error}); try again") from None
        _check_sha256(expected, label)(content)

    return check


def load_mnist(allow_download=True):
    """The official MNIST from the Keras mirror, cached and sha256-checked."""
    target = paths.data_cache() / "mnist.npz"
    keras_cache = pathlib.Path.home() / ".keras" / "datasets" / "mnist.npz"
    for candidate in (target, keras_cache):
        if candidate.exists():
            payload = candidate.read_bytes()
            if sha256_of(payload) != MNIST_SHA256:
                raise DataError(
                    f"{candidate}: sha256 mismatch with the official mnist.npz; delete it and run again to re-download"
                )
            return read_npz(candidate, name="mnist")
    if not allow_download:
        raise DatasetUnavailable(f"MNIST is not cached at {target}")
    download(MNIST_URL, target, _check_sha256(MNIST_SHA256, MNIST_URL))
    return read_npz(target, name="mnist")


def load_fashion_mnist(allow_download=True):
    """Fashion-MNIST from Debian's dataset-fashion-mnist package, else downloaded."""
    if all((DEBIAN_FASHION_DIR / name).exists() for name in FASHION_FILES):
        directory = DEBIAN_FASHION_DIR
    else:
        directory = paths.data_cache() / "fashion-mnist"
        for name, expected in FASHION_FILES.items():
            path = directory / name
            if path.exists():
                continue
            if not allow_download:
                raise DatasetUnavailable(f"Fashion-MNIST is not cached at {directory}")
            download(KERAS_MIRROR + name, path, _check_gz_content(expected, KERAS_MIRROR + name))
    for name, expected in FASHION_FILES.items():
        content = _read_maybe_gzip(directory / name)
        if sha256_of(content) != expected:
            raise DataError(
                f"{directory / name}: content sha256 mismatch with the official Fashion-MNIST; delete it and run again"
            )
    return read_idx_dir(directory, name="fashion-mnist")


def load_mnist_mini() -> Dataset:
    return read_npz(MINI_PATH, name="mnist-mini")


def load_dataset(spec: str | None = "auto", allow_download: bool = True, notice=None) -> Dataset:
    """Load a dataset by name (mnist, fashion-mnist, mnist-mini, auto) or path.

    `auto` is MNIST when it is cached or can be downloaded, else mnist-mini;
    `notice(message)` is told about the fallback (default: print to stderr).
    """
    notice = notice or (lambda message: print(message, file=sys.stderr))
    if spec in (None, "auto"):
        try:
            return load_mnist(allow_download=allow_download)
        except DatasetUnavailable as error:
            notice(f"MNIST unavailable ({error}); using the built-in mnist-mini sample instead.")
            return load_mnist_mini()
    if spec == "mnist":
        return load_mnist(allow_download=allow_download)
    if spec == "fashion-mnist":
        return load_fashion_mnist(allow_download=allow_download)
    if spec == "mnist-mini":
        return load_mnist_mini()
    path = pathlib.Path(spec).expanduser()
    if path.is_dir():
        return read_idx_dir(path)
    if path.suffix == ".npz" or path.is_file():
        return read_npz(path)
    names = (*BUILTIN_NAMES, "auto")
    close = (
        difflib.get_close_matches(spec, names, n=1, cutoff=0.5)
        or [name for name in names if name.startswith(spec.lower())][:1]
    )
    if close and os.sep not in spec:
        raise DataError(
            f"unknown dataset {spec!r} (did you mean {close[0]}?): use one of {', '.join(names)}, a directory of idx files or a .npz file"
        )
    if os.sep in spec or (os.altsep and os.altsep in spec) or spec.startswith((".", "~")):
        raise DataError(f"{spec}: no such file or directory; a dataset path is a directory of idx files or a .npz file")
    raise DataError(f"unknown dataset {spec!r}: use one of {', '.join(names)}, a directory of idx files or a .npz file")


FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def class_names(dataset_name):
    """What the 10 labels mean: Fashion-MNIST's garments, else the digits 0-9."""
    if dataset_name and "fashion" in str(dataset_name).lower():
        return FASHION_CLASSES
    return tuple(str(digit) for digit in range(NUM_CLASSES))


def pinned_name(spec: str | None, dataset: Dataset) -> str:
    """What a config records as its dataset: the loaded dataset's name where the spec was 'auto'."""
    return dataset.name if spec in (None, "auto") else spec


# --------------------------------------------------------------------------
# Preparation for training


def label_counts(labels: np.ndarray) -> dict[int, int]:
    """{label: count} like the book's `dict(zip(*np.unique(y, return_counts=True)))`."""
    unique, counts = np.unique(labels, return_counts=True)
    return {int(label): int(count) for label, count in zip(unique, counts)}


def split_validation(x, y, fraction, seed):
    """Hold out a seeded random `fraction` of the training data for validation."""
    if not 0 <= fraction < 1:
        raise DataError(f"validation_split must be in [0, 1), got {fraction}")
    count = int(round(len(x) * fraction))
    if count == 0:
        return x, y, x[:0], y[:0]
    order = np.random.default_rng(seed).permutation(len(x))
    held_out, kept = np.sort(order[:count]), np.sort(order[count:])
    return x[kept], y[kept], x[held_out], y[held_out]


def prepare_images(images: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 in [0, 1] reshaped to (N, *input_shape)."""
    images = np.asarray(images)
    return (images.reshape((len(images),) + tuple(input_shape)).astype(np.float32)) / np.float32(255.0)


def one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels)]
