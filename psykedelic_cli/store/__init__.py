"""The experiment store: one TinyDB JSON file of run documents (no TensorFlow here).

``Store(path)`` is the query API every command uses; ``new_run_document(config)`` makes
the document a run starts with. The document shape is in :mod:`.schema`.
"""

from psykedelic_cli.store.runs import Store, new_run_document

__all__ = ["Store", "new_run_document"]
