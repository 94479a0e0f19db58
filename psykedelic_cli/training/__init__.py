"""The staged training flow (TensorFlow is imported by ``flow``, not by this package)."""
