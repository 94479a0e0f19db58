"""Datasets: digits (bundled with scikit-learn), CIFAR-10/100 and Tiny ImageNet from local files.

``load_dataset(name, data_dir, split_seed)`` returns a ``Dataset`` of split, scaled,
mean-subtracted arrays with ``train_pipeline``/``eval_pipeline`` for tf.data.
Importing this package does not import TensorFlow; building a pipeline does.
"""

from psykedelic_cli.data.dataset import DATASETS, Dataset, load_dataset

__all__ = ["DATASETS", "Dataset", "load_dataset"]
