"""psykedelic: study convolutional networks by pruning individual convolution kernels.

Importing this package is cheap: TensorFlow is imported only by the modules that
need it (``psykedelic_cli.models``, ``psykedelic_cli.training``, ``psykedelic_cli.data``).
"""

__version__ = "0.1.0"
