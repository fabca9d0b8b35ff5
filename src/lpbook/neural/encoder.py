"""The transformer backbone shared by the token-level and latent-level self-supervised learners."""

from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """A small pre-LayerNorm transformer encoder over the ``s**L`` token positions.

    Token ids ``0..v-1`` are the grammar's symbols and id ``v`` is ``[MASK]``
    (the embedding has ``v + 1`` rows); positions get learned embeddings.
    Each block is ``x + attention(LayerNorm(x))`` then ``x + MLP(LayerNorm(x))``
    (``torch.nn.TransformerEncoderLayer`` with ``norm_first=True``, GELU, an
    MLP of width ``4 * d_model``, no dropout). There is no final LayerNorm:
    the heads that read the hidden states bring their own.

    Parameters
    ----------
    v : int
        Alphabet size of the tokens.
    n_positions : int
        Sequence length, ``s**L``.
    d_model, n_layers, n_heads : int
        Width, number of blocks, attention heads (``d_model % n_heads == 0``).
    """

    def __init__(self, v: int, n_positions: int, d_model: int, n_layers: int, n_heads: int):
        super().__init__()
        self.mask_id = v
        self.token_embedding = nn.Embedding(v + 1, d_model)
        self.position_embedding = nn.Parameter(0.02 * torch.randn(n_positions, d_model))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model,
                n_heads,
                dim_feedforward=4 * d_model,
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(n_layers)
        )

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Hidden states of every layer.

        Parameters
        ----------
        tokens : int64 tensor of shape ``(B, s**L)``, values in ``[0, v)``.
        mask : bool tensor of shape ``(B, s**L)``, optional
            ``True`` where the token is replaced by ``[MASK]`` before embedding.

        Returns
        -------
        list of ``n_layers + 1`` float tensors of shape ``(B, s**L, d_model)``:
        the embedding output (layer 0), then the output of each block.
        """
        if mask is not None:
            tokens = tokens.masked_fill(mask, self.mask_id)
        x = self.token_embedding(tokens) + self.position_embedding
        states = [x]
        for block in self.blocks:
            x = block(x)
            states.append(x)
        return states
