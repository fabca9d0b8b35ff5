"""lpbook: the library behind the executable book on learning from latents.

Modules follow the book: :mod:`lpbook.grammar` (the Random Hierarchy Model),
:mod:`lpbook.tree` (tree geometry), :mod:`lpbook.exact` (population statistics
computed from the rules), :mod:`lpbook.bp` (exact inference from partial strings by belief
propagation), :mod:`lpbook.empirical` (the same statistics counted
from samples), :mod:`lpbook.metrics` (accuracy up to relabelling),
:mod:`lpbook.learners` (the learner protocol), :mod:`lpbook.contexts` and
:mod:`lpbook.clustering` (the clustering engine), :mod:`lpbook.baselines`
(learning from tokens), :mod:`lpbook.neural` (the neural learners, with torch),
:mod:`lpbook.ilc` (iterative latent clustering), the sample-complexity sweeps
(:mod:`lpbook.points`, their points and grids; :mod:`lpbook.storage`, their
SQLite files; :mod:`lpbook.sweep`, which runs them; :mod:`lpbook.pstar`, ``P*``
and its fits), :mod:`lpbook.results` (precomputed results with their
sidecars), :mod:`lpbook.experiments` (every sweep and set of networks of the book,
each defined once), :mod:`lpbook.plots` and :mod:`lpbook.notebook` (figures and helpers of the
chapters),
:mod:`lpbook.root` (reading the root with labels), :mod:`lpbook.theory` (predictions of the
signal-against-noise theory from exact statistics), :mod:`lpbook.perturb` (error propagation
between levels), :mod:`lpbook.oracle` (the clustering step started from the true centres), :mod:`lpbook.modelcheck` (the predicted P* fitted and tested against sweeps), :mod:`lpbook.scale` (the ``LPBOOK_SCALE`` parameter sets of the chapters). The command line,
``lpbook`` or ``python -m lpbook``, is :mod:`lpbook.__main__`.
"""

from .baselines import SupervisedClustering, TokenClustering
from .grammar import RHM, Sample, UngrammaticalError
from .ilc import ILC, ILCWithProbe
from .learners import learner_modules as _learner_modules, torch_missing as _torch_missing
from .metrics import level_accuracy, synonym_partition_score
from .root import RootProbe

__version__ = "0.1.0"


def __getattr__(name: str):
    """The neural learners (``lpbook.MaskedTokenModel``, ...): importable from here, torch loaded only when one is asked for."""
    modules = {cls: module for module, cls in _learner_modules().values() if module.startswith("lpbook.neural.")}
    if name in modules:
        import importlib

        try:
            return getattr(importlib.import_module(modules[name]), name)
        except ModuleNotFoundError as err:
            if err.name != "torch":
                raise
            raise _torch_missing(name) from None
    raise AttributeError(f"module 'lpbook' has no attribute {name!r}")


__all__ = [
    "Data2Vec",
    "ILC",
    "ILCWithProbe",
    "MaskedTokenModel",
    "RHM",
    "RootProbe",
    "Sample",
    "SLC",
    "SupervisedCNN",
    "SupervisedClustering",
    "TokenClustering",
    "UngrammaticalError",
    "__version__",
    "level_accuracy",
    "synonym_partition_score",
]
