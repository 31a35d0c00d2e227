"""MNIST digit recognizer: an MLP and a CNN on 28x28 handwritten digits."""
