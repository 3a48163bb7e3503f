"""Compiled functions of a model on each backend (JAX, TensorFlow, PyTorch): a model's input gradients, for
integrated gradients (None where the backend gives none: the explainer then falls back to occlusion); the loss'
gradients for its weights, and a forward pass reduced where it runs, for the dynamics of a run (ml/dynamics.py)."""


def gradient_function(model):
    """f(inputs, weights) -> d sum(weights * model(inputs)) / d inputs on this backend, or None without gradients."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(inputs, weights, trainable, non_trainable):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            return jnp.sum(outputs.astype("float32") * weights)

        compiled = jax.jit(jax.grad(total))

        def gradient(inputs, weights):
            return compiled(
                inputs,
                weights,
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
            )

        return gradient
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def compiled(inputs, weights):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                total = tf.reduce_sum(tf.cast(model(inputs, training=False), tf.float32) * weights)
            return tape.gradient(total, inputs)

        return lambda inputs, weights: compiled(tf.constant(inputs), tf.constant(weights)).numpy()
    if backend == "torch":
        import torch

        def gradient(inputs, weights):
            tensor = keras.ops.convert_to_tensor(inputs).detach().requires_grad_(True)
            with torch.enable_grad():
                total = (model(tensor, training=False).float() * keras.ops.convert_to_tensor(weights)).sum()
                (grad,) = torch.autograd.grad(total, tensor)
            return grad.detach().cpu().numpy()

        return gradient
    return None


def loss_gradient_function(model, loss):
    """f(inputs, one_hot_labels) -> [NumPy gradient of the mean LOSS (a Keras loss name) plus the model's
    regularization penalties, for each of model.trainable_variables], on this backend, with training=False:
    dropout off and batch norm on its moving statistics, so that asking changes no state of the run."""
    import keras
    import numpy as np

    per_example = keras.losses.get(loss)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(trainable, non_trainable, inputs, labels):
            outputs, _, losses = model.stateless_call(
                trainable, non_trainable, inputs, training=False, return_losses=True
            )
            value = jnp.mean(per_example(labels, outputs.astype("float32")))
            return value + sum(losses) if losses else value

        compiled = jax.jit(jax.grad(total))

        def gradient(inputs, labels):
            grads = compiled(
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                inputs,
                labels,
            )
            return [np.asarray(grad) for grad in grads]

        return gradient
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def compiled(inputs, labels):
            with tf.GradientTape() as tape:
                outputs = tf.cast(model(inputs, training=False), tf.float32)
                value = tf.reduce_mean(per_example(labels, outputs))
                if model.losses:
                    value += tf.add_n(model.losses)
            return tape.gradient(value, [v.value for v in model.trainable_variables])

        return lambda inputs, labels: [grad.numpy() for grad in compiled(tf.constant(inputs), tf.constant(labels))]
    if backend == "torch":
        import torch

        def gradient(inputs, labels):
            with torch.enable_grad():
                outputs = model(keras.ops.convert_to_tensor(inputs), training=False).float()
                value = per_example(keras.ops.convert_to_tensor(labels), outputs).mean()
                if model.losses:
                    value = value + sum(model.losses)
                grads = torch.autograd.grad(value, [v.value for v in model.trainable_variables])
            return [grad.detach().cpu().numpy() for grad in grads]

        return gradient
    raise NotImplementedError(f"no gradients on the {backend} backend")


def reduced_forward_function(model, reduce):
    """f(inputs) -> REDUCE(model's outputs, as a list), as NumPy arrays, with training=False, compiled on this backend.

    REDUCE is written with keras.ops: it runs inside the compiled call (jax.jit, tf.function) on the backend's
    tensors, so that only its small results come back, not the outputs. A CNN's first layer alone is 11 million
    values on a probe batch of 256 images: bringing them back to NumPy to sum them cost TensorFlow a tenth of a
    second each epoch."""
    import keras
    import numpy as np

    backend = keras.backend.backend()

    def outputs_of(result):
        return list(result) if isinstance(result, (list, tuple)) else [result]

    if backend == "jax":
        import jax

        def reduced(trainable, non_trainable, inputs):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            return reduce(outputs_of(outputs))

        compiled = jax.jit(reduced)

        def forward(inputs):
            results = compiled(
                [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables], inputs
            )
            return jax.tree_util.tree_map(np.asarray, results)

        return forward
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def compiled(inputs):
            return reduce(outputs_of(model(inputs, training=False)))

        return lambda inputs: tf.nest.map_structure(lambda value: value.numpy(), compiled(tf.constant(inputs)))
    if backend == "torch":
        import torch

        def forward(inputs):
            with torch.no_grad():
                results = reduce(outputs_of(model(keras.ops.convert_to_tensor(inputs), training=False)))
            return [[keras.ops.convert_to_numpy(value) for value in layer] for layer in results]

        return forward
    raise NotImplementedError(f"no compiled forward pass on the {backend} backend")
