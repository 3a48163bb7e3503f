"""Inside the three networks: what each layer computes for one digit, and which pixels decided it.

    MLP  every hidden layer's activations (after its activation function), and
         the incoming weights of the first layer's most active units as 28x28
         templates
    CNN  every feature map of every convolution and pooling layer, and the
         first convolution's kernels
    RNN  the hidden state after each of the 28 rows, and the class
         probabilities the output layer gives after each row ("what it
         believes after reading t rows"); defined for a unidirectional last
         recurrent layer (the listing), said to be undefined otherwise
    all  an attribution map over the input for the predicted class and the
         runner-up: integrated gradients from a blank image on the backend's
         own gradients, or occlusion where there are none

Integrated gradients are complete when, for every class, the map's sum is
within 5% of f(x) - f(blank) (that class's probability on the image minus
on a blank image), or within 0.0001 in probability where 5% of the
difference is less than that (a class that hardly moves is not held to
float32 round-off). Each class starts at 32 midpoint steps, doubled while
its gap is over the bound, up to 1,024; a class still over the bound there
makes `complete` false. The record says, per class, the steps used and the
gap (absolute, and relative to the difference), and the backend.

An `Explainer` wraps one loaded model: it builds its probe model (the
original layers, plus a copy of the last recurrent layer that returns every
step, sharing its weights) and its gradient function once, then explains
any number of 28x28 images. Keras is imported only when a model is
explained, after the run's backend is chosen; `explain_run` and
`explain_files` choose it as `predict` does.
"""

import base64
import threading

import numpy as np

from mnistlab.core.config import ATTRIBUTION_METHODS
from mnistlab.core.errors import ConfigError
from mnistlab.ml import data, explain_views, gradients, predict
from mnistlab.ml.explain_views import OCCLUSION_PATCH
from mnistlab.record import rundir

TEMPLATE_UNITS = 8  # first-layer templates shown for the MLP: its most active units
IG_STEPS = 32  # integrated gradients: each class's first try; doubled while its sum is off
IG_MAX_STEPS = 1024  # five doublings: a sharply curved path needs that many (26% off at 32 steps, 0.2% at 1,024)
# Completeness: |sum of the map - (f(x) - f(blank))| <= max(5% of |f(x) - f(blank)|, 0.0001).
# The floor only matters where the difference is under 0.002 (0.2 percentage
# points); a map 26% off passes only where the class moved by less than 0.0004.
COMPLETENESS_RELATIVE = 0.05
COMPLETENESS_FLOOR = 1e-4


class Explainer:
    """One trained model, ready to show its inside for 28x28 images in [0, 1]."""

    def __init__(self, model, config):
        import keras

        self.model = model
        self.config = config
        self.family = config.family
        self.input_shape = tuple(config.input_shape)
        self.views, tensors, self.reading_note = explain_views.VIEW_BUILDERS[self.family](model, config)
        # One call gives every view and the prediction; the probe shares the model's weights.
        # Built on `model.input` (the one input tensor), not `model.inputs` (a list of it): a
        # model built on a list expects a list, and Keras warns on every call given an array.
        self.probe = keras.Model(
            model.input,
            [tensor for _, _, tensor in self.views] + list(tensors) + [model.outputs[0]],
            name=f"{model.name}_inside",
        )
        self._has_beliefs = bool(tensors)
        self._gradient = None
        self._lock = threading.Lock()  # one explanation at a time per model: a server calls from many threads

    # ------------------------------------------------------------------
    def layout(self) -> dict:
        """What `probe` gives, output by output, and what a page needs beside it to show the inside view
        without Keras (the shared site, `web.site`): each view's name, kind and shape, whether the RNN's
        beliefs follow, the first layer's weights (the MLP's templates, the CNN's kernels), the words."""
        import keras
        from keras import layers as keras_layers

        views = [
            {"name": name, "kind": kind, "shape": [int(side) for side in tensor.shape[1:]]}
            for name, kind, tensor in self.views
        ]
        layout = {"family": self.family, "views": views, "beliefs": self._has_beliefs, "templates": None}
        layout["kernels"] = self._first_kernels()["weights"] if self.family == "cnn" else None
        if self.family == "mlp":
            dense = next(layer for layer in self.model.layers if isinstance(layer, keras_layers.Dense))
            # (units, 28, 28): every first-layer unit's incoming weights; the page picks the most active.
            kernel = np.asarray(keras.ops.convert_to_numpy(dense.kernel), dtype=np.float32)
            layout["templates"] = {
                "layer": dense.name,
                "count": TEMPLATE_UNITS,
                "weights": kernel.T.reshape(-1, 28, 28),
            }
        labels = data.class_names(self.config.dataset)
        reading_note = self.reading_note
        # The words under the view: its note, and the attribution's for each class the model may predict.
        said = [
            explain_views.notes(
                self,
                {
                    "layers": views,
                    "labels": labels,
                    "prediction": digit,
                    "attributions": {"method": "occlusion"},
                    "reading": {"note": reading_note},
                },
            )
            for digit in range(len(labels))
        ]
        layout["notes"] = {"inside": said[0]["inside"], "attribution": [words["attribution"] for words in said]}
        layout["labels"] = list(labels)
        layout["occlusion_patch"] = OCCLUSION_PATCH
        return layout

    def explain(self, image, method="auto", classes=None) -> dict:
        """The inside of the model for one (28, 28) image in [0, 1]; arrays are NumPy float32.

        `classes`: the classes to attribute (default: the predicted class and the runner-up).
        """
        with self._lock:
            return self._explain(np.asarray(image, dtype=np.float32).reshape(28, 28), method, classes)

    def _explain(self, image, method, classes):
        blank = np.zeros_like(image)
        # The image and the blank baseline in one batch: the views of the first, and f(blank) for completeness.
        outputs = self.probe.predict_on_batch(np.stack([image, blank]).reshape((2,) + self.input_shape))
        outputs = [np.asarray(output, dtype=np.float32) for output in outputs]
        probabilities = outputs[-1][0]
        ranked = np.argsort(-probabilities, kind="stable")
        prediction, runner_up = int(ranked[0]), int(ranked[1])
        explanation = {
            "family": self.family,
            "prediction": prediction,
            "runner_up": runner_up,
            "probabilities": probabilities,
            "labels": data.class_names(self.config.dataset),
            "layers": [
                {"name": name, "kind": kind, "shape": list(values.shape[1:]), "values": values[0]}
                for (name, kind, _), values in zip(self.views, outputs)
            ],
        }
        if self.family == "mlp":
            explanation["templates"] = self._templates(explanation["layers"][0]["values"])
        if self.family == "cnn":
            explanation["kernels"] = self._first_kernels()
        if self.family == "rnn":
            last = explanation["layers"][-1]
            explanation["reading"] = {
                "hidden": last["values"],
                "beliefs": outputs[len(self.views)][0] if self._has_beliefs else None,
                "note": self.reading_note,
            }
        targets = list(classes) if classes is not None else [prediction, runner_up]
        explanation["attributions"] = self.attribute(
            image, targets, method, baseline_probabilities=outputs[-1][1], probabilities=probabilities
        )
        explanation["notes"] = explain_views.notes(self, explanation)
        return explanation

    # ------------------------------------------------------------------
    def attribute(self, image, classes, method="auto", baseline_probabilities=None, probabilities=None) -> dict:
        """Attribution maps (len(classes), 28, 28) for CLASSES: which pixels moved each class's probability."""
        if method not in ATTRIBUTION_METHODS:
            raise ConfigError(f"attribution method must be one of {', '.join(ATTRIBUTION_METHODS)}, got {method!r}")
        if probabilities is None or baseline_probabilities is None:
            both = np.asarray(
                self.model.predict_on_batch(np.stack([image, np.zeros_like(image)]).reshape((2,) + self.input_shape)),
                dtype=np.float32,
            )
            probabilities, baseline_probabilities = both[0], both[1]
        if method in ("auto", "integrated-gradients"):
            gradient = self._gradient_function()
            if gradient is not None:
                return self._integrated_gradients(gradient, image, classes, probabilities, baseline_probabilities)
            if method == "integrated-gradients":
                raise ConfigError("this backend gives no gradients here; use --method occlusion")
        return self._occlusion(image, classes, probabilities)

    def _integrated_gradients(self, gradient, image, classes, probabilities, baseline_probabilities):
        """Integrated gradients (Sundararajan et al., 2017) from a blank image, midpoint rule.

        Each class's steps double while its map's sum is further from
        f(x) - f(blank) than `allowed_gap` lets it be, up to IG_MAX_STEPS, so
        a sharp softmax does not silently break completeness.
        """
        import keras

        differences = np.array([probabilities[c] - baseline_probabilities[c] for c in classes], dtype=np.float64)
        allowed = np.array([allowed_gap(difference) for difference in differences])
        steps = [IG_STEPS] * len(classes)
        maps = np.zeros((len(classes), 28, 28))
        pending = list(range(len(classes)))
        while pending:
            totals = self._path_gradient_sums(
                gradient,
                image,
                [classes[p] for p in pending],
                [steps[p] for p in pending],
                len(probabilities),
                IG_STEPS * len(classes),
            )
            for position, total in zip(pending, totals):
                maps[position] = image.astype(np.float64) * total / steps[position]
            gaps = np.abs(maps.reshape(len(classes), -1).sum(axis=1) - differences)
            pending = [p for p in pending if gaps[p] > allowed[p] and steps[p] < IG_MAX_STEPS]
            for position in pending:
                steps[position] *= 2
        sums = maps.reshape(len(classes), -1).sum(axis=1)
        gaps = np.abs(sums - differences)
        within = [bool(gap <= bound) for gap, bound in zip(gaps, allowed)]
        return {
            "method": "integrated-gradients",
            "baseline": "blank",
            "backend": keras.backend.backend(),
            "classes": [int(c) for c in classes],
            "maps": maps.astype(np.float32),
            "sums": [float(s) for s in sums],
            "differences": [float(d) for d in differences],
            "steps": max(steps),  # the most any class needed
            "steps_per_class": steps,
            "max_steps": IG_MAX_STEPS,
            "gaps": [float(gap) for gap in gaps],  # |sum - difference|, in probability
            "relative_gaps": [
                float(gap / abs(d)) if d != 0 else None for gap, d in zip(gaps, differences)
            ],  # of |difference|
            "allowed_gaps": [float(bound) for bound in allowed],
            "complete_per_class": within,
            "complete": all(within),
        }

    def _path_gradient_sums(self, gradient, image, targets, steps, class_count, batch_size):
        """Per target class: the sum over its STEPS midpoints alpha of d f_class(alpha * image) / d input.

        Every target's points go through the gradient in batches of one size,
        BATCH_SIZE rows (the tail padded with blank rows whose weight is zero):
        one batch shape, compiled once, whatever the steps.
        """
        alphas = np.concatenate([(np.arange(count) + 0.5) / count for count in steps]).astype(np.float32)
        owners = np.repeat(np.arange(len(targets)), steps)  # row -> position in TARGETS
        padded = -(-len(alphas) // batch_size) * batch_size
        path_alphas = np.zeros(padded, np.float32)
        path_alphas[: len(alphas)] = alphas
        weights = np.zeros((padded, class_count), np.float32)
        weights[np.arange(len(alphas)), np.asarray(targets)[owners]] = 1
        totals = np.zeros((len(targets), 28, 28))
        for start in range(0, len(alphas), batch_size):
            batch = (path_alphas[start : start + batch_size, None, None] * image[None]).reshape(
                (batch_size,) + self.input_shape
            )
            rows = np.asarray(gradient(batch, weights[start : start + batch_size]), dtype=np.float64).reshape(
                batch_size, 28, 28
            )
            used = min(batch_size, len(alphas) - start)
            np.add.at(totals, owners[start : start + used], rows[:used])
        return totals

    def _occlusion(self, image, classes, probabilities):
        """Occlusion: blank each 4x4 block; a pixel's score is how much its block's blanking lowers the class."""
        import keras

        size = OCCLUSION_PATCH
        corners = [(row, column) for row in range(0, 28, size) for column in range(0, 28, size)]
        occluded = np.repeat(image[None], len(corners), axis=0)
        for index, (row, column) in enumerate(corners):
            occluded[index, row : row + size, column : column + size] = 0
        scores = np.asarray(
            self.model.predict_on_batch(occluded.reshape((len(corners),) + self.input_shape)), dtype=np.float64
        )
        maps = np.zeros((len(classes), 28, 28))
        for index, (row, column) in enumerate(corners):
            for position, target in enumerate(classes):
                # Spread over the block's pixels, so that the map sums to the total drop.
                maps[position, row : row + size, column : column + size] = (
                    probabilities[target] - scores[index, target]
                ) / (size * size)
        return {
            "method": "occlusion",
            "baseline": "blank",
            "backend": keras.backend.backend(),
            "patch": size,
            "classes": [int(c) for c in classes],
            "maps": maps.astype(np.float32),
            "sums": [float(s) for s in maps.reshape(len(classes), -1).sum(axis=1)],
            "differences": None,
            "complete": None,
        }

    def _gradient_function(self):
        if self._gradient is None:
            self._gradient = gradients.gradient_function(self.model) or False
        return self._gradient or None

    # ------------------------------------------------------------------
    def _templates(self, first_activations):
        """The incoming weights of the first layer's most active units, as 28x28 images."""
        import keras
        from keras import layers

        dense = next(layer for layer in self.model.layers if isinstance(layer, layers.Dense))
        kernel = np.asarray(keras.ops.convert_to_numpy(dense.kernel), dtype=np.float32)
        units = np.argsort(-first_activations, kind="stable")[:TEMPLATE_UNITS]
        return {
            "layer": dense.name,
            "units": [int(u) for u in units],
            "activations": [float(first_activations[u]) for u in units],
            "weights": kernel[:, units].T.reshape(len(units), 28, 28),
        }

    def _first_kernels(self):
        """The first convolution's kernels, (filters, height, width), for the single input channel."""
        import keras
        from keras import layers

        conv = next(layer for layer in self.model.layers if isinstance(layer, layers.Conv2D))
        kernel = np.asarray(keras.ops.convert_to_numpy(conv.kernel), dtype=np.float32)
        return {"layer": conv.name, "weights": np.transpose(kernel[:, :, 0, :], (2, 0, 1))}


def allowed_gap(difference):
    """How far a class's attribution sum may be from DIFFERENCE = f(x) - f(blank) and still count as complete."""
    return max(COMPLETENESS_RELATIVE * abs(float(difference)), COMPLETENESS_FLOOR)


# --------------------------------------------------------------------------
# The views of each family: (name, kind, symbolic tensor), plus extra probe outputs


# --------------------------------------------------------------------------
# Words for each view: two or three plain sentences tied to the chapter, with this model's numbers


# --------------------------------------------------------------------------
# JSON


def to_json(value, compact=False):
    """An explanation as JSON-ready values.

    Full (the CLI): every number as a float. Compact (the page): arrays of
    more than 100 values as {"shape", "min", "max", "uint8": base64}, each
    value scaled to 0-255 between min and max: a tenth of the size, and the
    page draws them as images anyway.
    """
    if isinstance(value, dict):
        return {key: to_json(item, compact) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item, compact) for item in value]
    if isinstance(value, np.ndarray):
        if compact and value.size > 100:
            low, high = float(value.min()), float(value.max())
            scaled = (
                np.zeros(value.shape, np.uint8)
                if high <= low
                else np.round((value - low) / (high - low) * 255).astype(np.uint8)
            )
            return {
                "shape": list(value.shape),
                "min": low,
                "max": high,
                "uint8": base64.b64encode(scaled.tobytes()).decode("ascii"),
            }
        return np.round(value.astype(np.float64), 6).tolist() if compact else value.astype(np.float64).tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------
# From run directories and image files


def for_predictor(predictor) -> Explainer:
    """An Explainer of a loaded `predict.Predictor`'s model, on its own copy of the weights (it runs beside the predictor's threads)."""
    return Explainer(predictor.copy_of_keras_model(), predictor.config)


def explainer_for(run_dir, backend="auto") -> Explainer:
    """An Explainer for a run directory's model (choosing this process' backend if Keras is not running yet)."""
    predict.activate_for([run_dir], "keras", backend)
    import keras

    config, _ = rundir.read_config(run_dir)
    # A .keras file loads on any backend: the one this process runs, whatever the run trained on.
    return Explainer(keras.saving.load_model(rundir.model_path(run_dir)), config)


def explain_run(run_dir, image, method="auto", backend="auto") -> dict:
    """The inside of a run's model for one 28x28 image in [0, 1] (see `Explainer.explain`)."""
    return explainer_for(run_dir, backend).explain(image, method=method)
