"""Suite-wide settings: quiet TensorFlow, a non-interactive matplotlib backend.

Fixtures belong in the conftest.py of the test folder that uses them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
