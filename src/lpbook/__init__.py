"""lpbook: the library behind the executable book on learning from latents.

Modules follow the book: :mod:`lpbook.grammar` (the Random Hierarchy Model),
:mod:`lpbook.tree` (tree geometry), :mod:`lpbook.exact` (population statistics
computed from the rules), :mod:`lpbook.empirical` (the same statistics counted
from samples), :mod:`lpbook.metrics` (accuracy up to relabelling),
:mod:`lpbook.scale` (the ``LPBOOK_SCALE`` parameter sets of the chapters).
"""

from .grammar import RHM, Sample, UngrammaticalError
from .metrics import level_accuracy, synonym_partition_score

__version__ = "0.1.0"

__all__ = ["RHM", "Sample", "UngrammaticalError", "level_accuracy", "synonym_partition_score", "__version__"]
