"""Fixtures of the training tests: a tiny, fast configuration on the digits data."""

import pytest

# ResNet-8 on digits, 2 epochs per stage: a real staged run in a few seconds.
TINY = ["--depth", "8", "--epochs", "4", "--steps", "2", "--batch-size", "64", "--patience", "1"]


@pytest.fixture
def tiny_args():
    return list(TINY)
