"""The networks: backends, data, preprocessing, the model registry, training, prediction, explanation, export."""
