"""Build the built-in `mnist-mini` dataset from the official MNIST files.

Only the MNIST *test* images are available offline on the development
machines, so mnist-mini is a class-balanced sample of those 10,000 real
digits, split into its own train and test parts. Its accuracy figures are
therefore not comparable with the book's, which train on the 60,000 official
training digits; it exists so that everything runs offline.

Usage: python scripts/make_mnist_mini.py ../shared/data/mnist src/mnistlab/ml/datasets/mnist-mini.npz
"""

import argparse
import pathlib

import numpy as np

from mnistlab.ml import data

TRAIN_PER_CLASS = 240
TEST_PER_CLASS = 60


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mnist_dir", type=pathlib.Path)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    images = data.read_idx_images(args.mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = data.read_idx_labels(args.mnist_dir / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(args.seed)
    train_index, test_index = [], []
    for digit in range(10):
        index = rng.permutation(np.flatnonzero(labels == digit))
        train_index.append(index[:TRAIN_PER_CLASS])
        test_index.append(index[TRAIN_PER_CLASS : TRAIN_PER_CLASS + TEST_PER_CLASS])
    train_index = rng.permutation(np.concatenate(train_index))
    test_index = rng.permutation(np.concatenate(test_index))
    data.atomic_write_npz(
        args.out,
        x_train=images[train_index],
        y_train=labels[train_index],
        x_test=images[test_index],
        y_test=labels[test_index],
    )
    print(f"wrote {args.out}: {len(train_index)} train, {len(test_index)} test digits")


if __name__ == "__main__":
    main()
