"""The supervised baseline: a hierarchical CNN trained on root labels."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._validate import check_float, check_int
from ..grammar import smallest_uint
from ..learners import Learner, register
from .training import (
    RUNTIME_OPTION_VALUES,
    RUNTIME_PARAMS,
    as_long_tensor,
    check_runtime,
    generator,
    in_batches,
    seeded,
    torch_threads,
    train,
)


class HierarchicalCNN(nn.Module):
    """``L`` convolutions of kernel size = stride = ``s``, each followed by a ReLU, then a linear readout.

    Layer ``l`` maps the ``s**(L-l+1)`` positions of tree level ``l - 1`` to
    the ``s**(L-l)`` positions of level ``l``, so the receptive fields follow
    the tree exactly. Input: int64 tokens of shape ``(B, s**L)`` in ``[0, v)``,
    one-hot encoded into ``v`` channels. Output: logits of shape ``(B, n_classes)``.
    """

    def __init__(self, v: int, s: int, L: int, n_classes: int, width: int):
        super().__init__()
        self.v = v
        channels = [v] + [width] * L
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, kernel_size=s, stride=s) for c_in, c_out in zip(channels, channels[1:])
        )
        self.readout = nn.Linear(width, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.one_hot(tokens, self.v).transpose(1, 2).float()  # (B, v, s**L)
        for conv in self.convs:
            x = F.relu(conv(x))  # (B, width, s**(L-l)) after layer l
        return self.readout(x[:, :, 0])


@register("supervised-cnn")
class SupervisedCNN(Learner):
    """A hierarchical CNN (:class:`HierarchicalCNN`) trained on the root labels with cross-entropy.

    ``transform`` returns only the root, ``{L: predicted labels}`` of shape
    ``(P, 1)``, dtype ``smallest_uint(n_classes)``, values in ``[0, n_classes)``; its test error is
    what the book's sample-complexity measurement of the supervised learner
    uses (Petrini et al. 2024 find ``P* ~ n_c * m**L``).

    Training is OUR choice (the paper's hyperparameters are unknown): Adam
    at learning rate ``lr`` on minibatches of ``batch_size``, no weight decay,
    for at most ``epochs`` epochs, stopping as soon as an epoch's mean training
    loss falls below ``stop_loss`` -- i.e. we train to (near) zero training
    loss, with no validation split, so every training sample is used for
    fitting (the learning curve, per epoch, is kept as ``curve_``). On the
    grammars we tried (up to ``v = 16, m = 4, L = 4``), the defaults reach a
    test accuracy near 1 a few times above ``P = n_c * m**L``; ``epochs``
    caps the few fits that approach zero loss slowly.

    Parameters
    ----------
    v, s, L, seed : int
        The grammar's shape and the seed (weights, batch order).
    n_classes : int, optional
        Root alphabet size (default ``v``).
    width : int
        Channels of every convolution (default 128).
    epochs : int
        Maximum number of epochs (default 200).
    batch_size : int
        Minibatch size (default 256).
    lr : float
        Adam learning rate (default 3e-3).
    stop_loss : float
        Stop once an epoch's mean cross-entropy is below this (default 1e-3).
    device : str or torch.device
        Where to train (default ``"cpu"``).
    threads : int
        torch's intra-op threads during ``fit`` and ``transform`` (default 1,
        the fastest for networks of this size, see :func:`torch_threads`).
    progress : bool
        Show a tqdm bar over steps (default True).

    Attributes (after ``fit``)
    --------------------------
    network_ : HierarchicalCNN
    curve_ : LearningCurve, one entry per epoch (no validation split).
    losses_ : list[float], the mean training loss of each epoch (``curve_.train_loss``).
    """

    uses_labels = True
    runtime_params = RUNTIME_PARAMS
    option_values = {
        "n_classes": "an integer >= 1",
        "width": "an integer >= 1",
        "epochs": "an integer >= 1",
        "batch_size": "an integer >= 1",
        "lr": "a number > 0",
        "stop_loss": "a number >= 0",
        **RUNTIME_OPTION_VALUES,
    }

    @classmethod
    def computed_defaults(cls) -> dict[str, str]:
        return {"n_classes": "v"}

    def __init__(
        self,
        v,
        s,
        L,
        seed=0,
        n_classes=None,
        width=128,
        epochs=200,
        batch_size=256,
        lr=3e-3,
        stop_loss=1e-3,
        device="cpu",
        threads=1,
        progress=True,
    ):
        super().__init__(v, s, L, seed)
        self.n_classes = self.v if n_classes is None else check_int("n_classes", n_classes, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.epochs = check_int("epochs", epochs, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.lr = check_float("lr", lr, low=0.0)
        self.stop_loss = check_float("stop_loss", stop_loss, low=0.0, closed=True)
        self.device, self.threads, self.progress = check_runtime(device, threads, progress)  # the device exists: checked in fit

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels :meth:`transform` returns: the root only."""
        return (self.L,)

    def _build_networks(self) -> dict[str, HierarchicalCNN]:
        """The untrained network of seed ``seed``, on the CPU, under the attribute that holds it."""
        with seeded(self.seed):
            return {"network_": HierarchicalCNN(self.v, self.s, self.L, self.n_classes, self.width)}

    def fit(self, tokens, labels=None) -> SupervisedCNN:
        """Train on ``tokens`` of shape ``(P, s**L)`` and root ``labels`` of shape ``(P,)``."""
        tokens, labels = self._fit_inputs(tokens, labels)
        x = as_long_tensor(tokens, self.device)
        y = as_long_tensor(labels, self.device)
        with torch_threads(self.threads):
            network = self._build_networks()["network_"]
            network.to(self.device)
            self.curve_ = train(
                network,
                lambda index: F.cross_entropy(network(x[index]), y[index]),
                x.shape[0],
                max_steps=self.epochs * -(-x.shape[0] // self.batch_size),
                batch_size=self.batch_size,
                lr=self.lr,
                rng=generator(self.seed),
                progress=self.progress,
                desc=type(self).__name__,
                stop_below=self.stop_loss,
            )
        self.losses_ = self.curve_.train_loss
        self.network_ = network
        return self

    def transform(self, tokens) -> dict[int, np.ndarray]:
        """``{L: labels}``: the predicted root of each row of ``tokens``, shape ``(P, 1)``, ``smallest_uint(n_classes)``."""
        self._check_fitted("network_")
        tokens = self._check_tokens(tokens)
        with torch_threads(self.threads):
            logits = in_batches(self.network_, as_long_tensor(tokens, self.device))
        return {self.L: logits.argmax(dim=1).numpy().astype(smallest_uint(self.n_classes))[:, None]}
