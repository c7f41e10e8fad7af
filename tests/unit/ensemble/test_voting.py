"""``SoftVotingPipeline``: the weighted mean of the members' label scores, answered as transformers answers."""

import numpy as np
import pytest
from transformers import pipeline

from tlnlp.inference import SoftVotingPipeline


class _Member:
    """A member that scores every text the same: ``scores`` in label order, ranked as ``top_k=None`` returns them."""

    def __init__(self, labels, scores):
        self.labels, self.scores = labels, scores
        self.calls = []

    def __call__(self, texts, top_k="", **kwargs):
        self.calls.append((list(texts), top_k, kwargs))
        ranked = sorted(({"label": lab, "score": s} for lab, s in zip(self.labels, self.scores, strict=True)),
                        key=lambda a: a["score"], reverse=True)
        return [ranked for _ in texts]


def test_scores_are_the_weighted_mean_of_the_members_scores():
    labels = ["a", "b", "c"]
    first, second = _Member(labels, [0.7, 0.2, 0.1]), _Member(labels, [0.1, 0.3, 0.6])
    voter = SoftVotingPipeline([first, second], [1.0, 1.0], labels)
    np.testing.assert_array_equal(voter.scores(["x", "y"]), np.mean([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], axis=0)[None]
                                  .repeat(2, axis=0))
    assert first.calls == [(["x", "y"], None, {})]  # every label's score from each member
    weighted = SoftVotingPipeline([first, second], [3.0, 1.0], labels).scores(["x"])
    np.testing.assert_allclose(weighted[0], [(3 * 0.7 + 0.1) / 4, (3 * 0.2 + 0.3) / 4, (3 * 0.1 + 0.6) / 4])
    assert voter("x") == [{"label": "a", "score": pytest.approx(0.4)}]
    assert [a["label"] for a in voter("x", top_k=None)] == ["a", "c", "b"]
    assert voter.scores([]).shape == (0, 3)
    with pytest.raises(ValueError, match="one weight per member"):
        SoftVotingPipeline([first], [1.0, 1.0], labels)


def test_one_member_votes_exactly_as_its_own_pipeline(tiny_classifier, tokenizer):
    model = tiny_classifier("bert", num_labels=3).eval()
    model.config.id2label = {0: "neg", 1: "neu", 2: "pos"}
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    voter = SoftVotingPipeline([pipe], [1.0], ["neg", "neu", "pos"])
    texts = ["a fine film", "dull and long"]
    for call in (("a fine film",), (texts,)):
        for kwargs in ({}, {"top_k": None}, {"top_k": 1}, {"top_k": 2}):
            assert voter(*call, **kwargs) == pipe(*call, **kwargs), (call, kwargs)
