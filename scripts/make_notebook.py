"""Writes docs/chapter1.ipynb from these cells (edit here, then run this and `python scripts/run_notebook.py --save`)."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = []


def md(text):
    cells.append(new_markdown_cell(text.strip()))


def code(text):
    cells.append(new_code_cell(text.strip()))


md("""
# Chapter 1 of *Advanced Deep Learning with Keras*, with mnistlab

This notebook walks the chapter (R. Atienza, "Introducing Advanced Deep Learning with Keras") with mnistlab:
the data and its label counts, the three listings (MLP, CNN, RNN) with their summaries and diagrams,
training them, one row of a result table across seeds with its verdict, the inside of one digit for each
network, and the chapter's teaching figures.

It runs top to bottom in under three minutes on a laptop's CPU, on the built-in `mnist-mini` sample
(2,400 training and 600 test digits of MNIST), so it needs no download. The test suite executes it
(`tests/test_notebook.py`), so what you see here is what the code does today.
To use the full MNIST, set `DATASET = "mnist"` below (downloaded once, about 11 MB) and give the
listings their book epochs; the command line does the same with `mnistlab listings` and `mnistlab reproduce`.
""")

code("""
import os
import pathlib
import tempfile

from IPython.display import Image, display

from mnistlab.ml import backend

# Keras fixes its backend when it is first imported: choose it before anything imports Keras.
BACKEND = backend.activate(os.environ.get("KERAS_BACKEND", "jax"))
if BACKEND != "tensorflow":
    # Keras imports TensorFlow (where it is installed) even on JAX or PyTorch, to check types when it
    # saves a model, and TensorFlow then logs a note that its oneDNN kernels are on, which
    # TF_CPP_MIN_LOG_LEVEL does not silence. Nothing here computes with TensorFlow: turn them off.
    # Set before TensorFlow loads; the sweep's worker processes inherit it.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

DATASET = "mnist-mini"   # "mnist" for the full 60,000/10,000 (downloaded once)
# Where this notebook's runs, run store and pictures go: a fresh temporary directory unless set.
WORK = pathlib.Path(os.environ.get("MNISTLAB_RUNS") or tempfile.mkdtemp(prefix="mnistlab-chapter1-"))
os.environ["MNISTLAB_RUNS"] = str(WORK)
print("backend:", BACKEND)  # (not WORK: a path of this machine, different every run)
""")

md("""
## 1.3 The data: MNIST

28x28 grayscale digits with their labels. The book prints the label counts of the training and test sets,
and a 5x5 grid of random training digits (Listing 1.3.1).
""")

code("""
from mnistlab.ml import data
from mnistlab.outputs import plots
from mnistlab.core import presets

dataset = data.load_dataset(DATASET)
# The file's name, not its path (which is this machine's).
print(f"{dataset.name}: {len(dataset.x_train)} train / {len(dataset.x_test)} test images ({pathlib.Path(str(dataset.source)).name})")
print("Train labels: ", data.label_counts(dataset.y_train))
print("Test labels:  ", data.label_counts(dataset.y_test))
print("The book's counts for the full MNIST training set:", presets.book()["mnist_label_counts"]["train"])
display(Image(filename=plots.sample_grid(dataset.x_train, dataset.y_train, WORK / "sample-grid.png")))
""")

md("""
Each network sees the same pixels, shaped its own way and scaled to [0, 1] (the images are divided by 255;
labels become one-hot vectors of 10):

* the MLP: a vector of 784 values;
* the CNN: a 28x28x1 image (height, width, channels);
* the RNN: 28 time steps of 28 values, one image row per step.
""")

code("""
from mnistlab.core.config import INPUT_SHAPES

labels = data.one_hot(dataset.y_train[:1])
print(f"label {dataset.y_train[0]} as one-hot: {labels[0].astype(int).tolist()}")
for family, shape in INPUT_SHAPES.items():
    inputs = data.prepare_images(dataset.x_train[:5], shape)
    print(f"{family}: each input has shape {inputs.shape[1:]}, values in [{inputs.min():.0f}, {inputs.max():.0f}]")
""")

md("""
## The three listings

Listing 1.3.2 (MLP), 1.4.1 (CNN) and 1.5.1 (RNN) are presets: the same settings as the book, as data.
Keras computes every shape; the parameter counts must equal the book's.
""")

code("""
from mnistlab.ml import models

LISTINGS = ("listing-1.3.2", "listing-1.4.1", "listing-1.5.1")
book_listings = presets.book()["listings"]
built = {}
for name in LISTINGS:
    config = presets.get(name).build_config()
    model = models.build_model(config)
    built[name] = model
    book_count = book_listings[name.removeprefix("listing-")]["total_params"]
    print(f"{name}: {model.count_params():,} parameters (book: {book_count:,})")
print()
print(models.summary_text(built["listing-1.4.1"]))
""")

code("""
import shutil

# The model diagram (Keras' plot_model, drawn by Graphviz) of the CNN, when Graphviz is installed.
if shutil.which("dot"):
    display(Image(filename=models.plot(built["listing-1.4.1"], WORK / "listing-1.4.1.png"), width=360))
else:
    print("Graphviz is not installed (apt-get install graphviz / brew install graphviz): no diagram")
""")

md("""
## Training

`mnistlab.ml.run_model.train_and_save` trains a config and writes the run directory: the resolved config,
the history per epoch, the model and the final figures (`mnistlab train` on the command line).
The book trains for 20, 10 and 20 epochs on 60,000 digits; here the epochs are cut so that
the notebook stays fast, and the data is the 2,400-digit sample, so expect lower accuracy than the book.
""")

code("""
from mnistlab.ml import run_model
from mnistlab.record.store import Store

EPOCHS = {"listing-1.3.2": 5, "listing-1.4.1": 2, "listing-1.5.1": 3}
runs = {}
with Store() as store:
    for name in LISTINGS:
        config = presets.get(name).build_config(epochs=EPOCHS[name], dataset=DATASET)
        # log: the first cell said which backend runs (train_and_save would say it again, on stderr, per run).
        metrics = run_model.train_and_save(config, dataset=dataset, preset=name, index=store, verbose=0, log=lambda line: None)
        runs[name] = pathlib.Path(metrics["run_dir"])
        book = book_listings[name.removeprefix("listing-")]
        print(f"{name}: test accuracy {100 * metrics['test_accuracy']:.1f}% after {EPOCHS[name]} epochs on {dataset.name} "
              f"(book: {book['reported_test_accuracy']}% after {book['epochs']} epochs on MNIST)")
""")

md("""
## One row of Table 1.3.2 across seeds, with its verdict

One run proves little: the same settings with another seed give another accuracy. mnistlab runs a row
with several seeds and says whether the book's figure lies inside the 95% confidence interval of the mean,
where the runs are what the book measured (full MNIST, the row's epochs and settings, 3 seeds or more);
elsewhere, as here, it says why the figure is not held against them.
This is the path `mnistlab reproduce table-1.3.2` takes, for one row, with 10 epochs instead of 20.
""")

code("""
from mnistlab.analysis import tables
from mnistlab.jobs import reproduce, sweep

TABLE, SEEDS, ROW_EPOCHS = "table-1.3.2", 3, 5
# The row of Listing 1.3.2's settings: Dropout(0.45), Adam (its hidden widths read as the listing's two layers).
row_preset = next(p.name for p in presets.table_rows(TABLE) if p.settings["regularizer"] == "dropout(0.45)" and p.settings["optimizer"] == "adam")
jobs = [job for job in reproduce.plan_table(TABLE, dataset, SEEDS, choice=reproduce.TableChoice(epochs=ROW_EPOCHS)) if job.preset == row_preset]
sweep.run(jobs, log=lambda line: None)
with Store() as store:
    row = next(r for r in tables.summarize_rows(TABLE, jobs, store) if r["preset"] == row_preset)
test = row["test"]
print(f"row {row['row']} ({row['settings']}), {row['runs']} seeds, {ROW_EPOCHS} epochs on {dataset.name}:")
print(f"  test accuracy {test['mean']:.2f}% (95% CI {test['ci_low']:.2f} to {test['ci_high']:.2f}); book {row['book_test']}%")
if row["comparable"]:
    print("  verdict: the book's figure is", "inside the interval" if row["book_test_in_ci"] else "outside the interval")
else:
    print(f"  verdict: the book's figure is not held against these runs ({row['comparable_reason']})")
""")

md("""
## Inside each network, for one digit

`mnistlab.ml.explain` shows what each layer computes for one input (the command `mnistlab explain`
draws the same sheets, and the draw-a-digit page shows them live):

* the MLP: every hidden unit's activation, and the 28x28 weight templates of the most active first-layer units;
* the CNN: every feature map of every convolution and pooling layer, and the first layer's kernels;
* the RNN: the hidden state after each of the 28 rows, and what it believes after reading t rows;
* all three: which pixels pushed the prediction up (red) or down (blue), by integrated gradients.
""")

code("""
from mnistlab.ml import explain
from mnistlab.outputs import sheets

image = dataset.x_test[0] / 255.0
for name in LISTINGS:
    inside = explain.explain_run(runs[name], image)
    label = inside["labels"][inside["prediction"]]
    path = sheets.write_sheet(inside, image, WORK / f"inside-{name}.png", f"{name} says {label} (the true label is {dataset.y_test[0]})")
    display(Image(filename=path, width=900))
    if inside["family"] == "rnn":
        beliefs = inside["reading"]["beliefs"]
        for rows_read in (7, 14, 21, 28):
            best = beliefs[rows_read - 1].argmax()
            print(f"after {rows_read:2d} rows it believes '{best}' ({100 * beliefs[rows_read - 1][best]:.0f}%)")
""")

md("""
## The chapter's teaching figures

The activation functions of Table 1.3.1, gradient descent with learning rates too small, right and too large,
a function with two minima, and the three ways the networks read the same image.
""")

code("""
from mnistlab.outputs import figures

for path in figures.write_all(WORK / "figures"):
    display(Image(filename=path, width=620))
""")

notebook = new_notebook(
    cells=cells,
    metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    },
)
nbformat.write(notebook, "docs/chapter1.ipynb")
