"""Tests of lpbook.neural.encoder: the transformer backbone of the encoder learners."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lpbook.neural import Encoder  # noqa: E402


def test_encoder_returns_every_layer_and_masks():
    torch.manual_seed(0)
    encoder = Encoder(v=4, n_positions=8, d_model=8, n_layers=3, n_heads=2).eval()
    tokens = torch.randint(0, 4, (5, 8))
    mask = torch.zeros(5, 8, dtype=torch.bool)
    mask[:, 2] = True
    states = encoder(tokens)
    assert len(states) == 4 and all(s.shape == (5, 8, 8) for s in states)
    masked = encoder(tokens, mask)[0]
    # Layer 0 is the embedding: only the masked position changes, to the [MASK] embedding.
    torch.testing.assert_close(masked[:, [0, 1, 3]], states[0][:, [0, 1, 3]])
    expected = encoder.token_embedding.weight[4] + encoder.position_embedding[2]
    torch.testing.assert_close(masked[:, 2], expected.expand(5, -1))
