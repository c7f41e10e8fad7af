import numpy as np
import pytest
import torch

from tlnlp.fewshot import score_continuations

PREFIX = [5, 17, 33, 8, 90, 41, 12, 7, 66, 23, 3, 101, 57]
CONTEXTS = [[11, 4, 9], [200, 15, 16, 17, 18, 19, 20], [42], [77, 88, 99, 110, 121, 132, 143, 154, 165, 176]]
CONTINUATIONS = [[13], [21, 22], [31, 32, 34], [55]]  # single- and multi-token candidates


def reference(model, prefix, contexts, continuations):
    """One unpadded, unbatched forward pass per full sequence."""
    out = np.zeros((len(contexts), len(continuations)))
    with torch.no_grad():
        for i, context in enumerate(contexts):
            for j, cont in enumerate(continuations):
                ids = torch.tensor([prefix + context + cont])
                logp = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
                start = len(prefix) + len(context)
                out[i, j] = sum(logp[start - 1 + t, tok].item() for t, tok in enumerate(cont))
    return out


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_shared_prefix_equals_naive_and_full_sequence_scoring(tiny_lm, arch):
    model = tiny_lm(arch)
    expected = reference(model, PREFIX, CONTEXTS, CONTINUATIONS)
    shared = score_continuations(model, PREFIX, CONTEXTS, CONTINUATIONS, batch_size=3)
    naive = score_continuations(model, PREFIX, CONTEXTS, CONTINUATIONS, batch_size=5, shared_prefix=False)
    assert shared.shape == (4, 4)
    np.testing.assert_allclose(shared, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(naive, expected, atol=1e-4, rtol=0)
    assert np.abs(shared - naive).max() <= 1e-3
    # scoring again reuses nothing stale: the prefix cache is copied, never changed
    np.testing.assert_array_equal(score_continuations(model, PREFIX, CONTEXTS, CONTINUATIONS, batch_size=3), shared)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_empty_prefix_and_one_by_one_batches(tiny_lm, arch):
    model = tiny_lm(arch)
    expected = reference(model, [], CONTEXTS, CONTINUATIONS)
    np.testing.assert_allclose(score_continuations(model, [], CONTEXTS, CONTINUATIONS, batch_size=1), expected,
                               atol=1e-4, rtol=0)
    np.testing.assert_allclose(score_continuations(model, [], CONTEXTS, CONTINUATIONS, shared_prefix=False),
                               expected, atol=1e-4, rtol=0)


def test_progress_counts_examples(tiny_lm):
    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    for shared in (True, False):
        bar = Bar()
        score_continuations(tiny_lm("llama"), PREFIX, CONTEXTS, CONTINUATIONS, batch_size=3, shared_prefix=shared,
                            progress=bar)
        assert bar.n == len(CONTEXTS)


def test_empty_pieces_are_refused(tiny_lm):
    with pytest.raises(ValueError, match="at least one token"):
        score_continuations(tiny_lm("llama"), PREFIX, [[1], []], CONTINUATIONS)
    with pytest.raises(ValueError, match="at least one token"):
        score_continuations(tiny_lm("llama"), PREFIX, [[1]], [[2], []])
