"""Neural learners of the book, in torch.

Torch is imported only inside this subpackage, so the rest of :mod:`lpbook`
works without it. Importing it registers the learners ``"supervised-cnn"``
(:class:`SupervisedCNN`), ``"masked-token"`` (:class:`MaskedTokenModel`),
``"data2vec"`` (:class:`Data2Vec`) and ``"slc"`` (:class:`SLC`, the stack of predictor-clusterer modules).

The encoder learners, :class:`MaskedTokenModel` and :class:`Data2Vec`, share
one base, :class:`EncoderLearner` (:mod:`lpbook.neural.base`): the transformer
backbone (:class:`Encoder`), the masks, the validation split, the training
loop (:func:`train`, which records a :class:`LearningCurve`) and the readout
:class:`NeighbourReadout` (whose contract is in :mod:`lpbook.neural.readout`);
a new one is a subclass that gives its network and its loss. The other two
are read differently: :class:`SupervisedCNN` predicts the root, trained by
:func:`train` too, and :class:`SLC` trains lookup tables in a loop of its own
and returns their hard codes. The clean-state probe (:class:`LatentProbe`,
:func:`score_layers`) is kept as the comparison for the readout. :class:`Snapshots`
(:mod:`lpbook.neural.snapshots`) keeps copies of a network along its training,
passed to ``fit`` as its ``on_step`` callback, and :func:`read_network` reads them.
"""

try:
    import torch  # noqa: F401
except ModuleNotFoundError as err:
    if err.name != "torch":
        raise
    from ..learners import torch_missing

    raise torch_missing("lpbook.neural") from None

from .base import EncoderLearner
from .cnn import HierarchicalCNN, SupervisedCNN
from .data2vec import Data2Vec
from .encoder import Encoder
from .masked import MaskedTokenModel, MaskedTokenNetwork
from .probe import LatentProbe, ProbeScores, pool, score_layers
from .readout import NeighbourReadout
from .slc import SLC
from .snapshots import Snapshots, read_network
from .training import LearningCurve, resolve_device, train

__all__ = [
    "Data2Vec",
    "Encoder",
    "EncoderLearner",
    "HierarchicalCNN",
    "LatentProbe",
    "LearningCurve",
    "MaskedTokenModel",
    "MaskedTokenNetwork",
    "NeighbourReadout",
    "ProbeScores",
    "SLC",
    "Snapshots",
    "SupervisedCNN",
    "pool",
    "read_network",
    "resolve_device",
    "score_layers",
    "train",
]
