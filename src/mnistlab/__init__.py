"""mnistlab: the MLP, CNN and RNN of Chapter 1 of Advanced Deep Learning with Keras, on Keras 3.

Importing the package does not import Keras; `mnistlab.ml.backend.activate()`
chooses the backend first (the CLI does it for you).
"""

__version__ = "0.1.0"
