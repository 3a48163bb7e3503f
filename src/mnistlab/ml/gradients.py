"""A model's input gradients on each backend (JAX, TensorFlow, PyTorch), for integrated gradients; None where
the backend gives none (then the explainer falls back to occlusion)."""


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
