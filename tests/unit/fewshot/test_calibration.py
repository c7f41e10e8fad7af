import numpy as np
import pytest

from tlnlp.fewshot import DEFAULT_CONTENT_FREE, contextual_calibration, label_log_scores, softmax


def test_contextual_calibration_on_hand_made_probabilities():
    probs = np.array([[0.6, 0.4], [0.8, 0.2], [0.5, 0.5]])
    content_free = np.array([[0.7, 0.3], [0.8, 0.2]])  # mean (0.75, 0.25): the prompt leans to label 0
    calibrated = contextual_calibration(probs, content_free)
    # p / p_cf, renormalised: (0.8, 1.6) / 2.4; (1.0667, 0.8) / 1.8667; (0.6667, 2.0) / 2.6667
    np.testing.assert_allclose(calibrated, [[1 / 3, 2 / 3], [4 / 7, 3 / 7], [0.25, 0.75]], atol=1e-12)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert calibrated.argmax(axis=1).tolist() == [1, 0, 1]  # the first row flips after calibration
    np.testing.assert_allclose(contextual_calibration(probs, [0.75, 0.25]), calibrated)  # a mean row works too
    np.testing.assert_allclose(contextual_calibration(probs, [[0.5, 0.5]]), probs)  # unbiased prompt: unchanged


def test_calibration_errors():
    with pytest.raises(ValueError, match="disagree on the number of labels"):
        contextual_calibration(np.ones((2, 3)) / 3, [0.5, 0.5])
    with pytest.raises(ValueError, match="must be positive"):
        contextual_calibration(np.ones((2, 2)) / 2, [1.0, 0.0])


def test_label_scores_sum_mean_and_several_words():
    # words: label 0 -> one word of 1 token; label 1 -> words of 3 tokens and 1 token
    word_ll = np.array([[np.log(0.2), np.log(0.001), np.log(0.1)]])
    tokens, owners = [1, 3, 1], [0, 1, 1]
    summed = label_log_scores(word_ll, tokens, owners, 2, "sum")
    np.testing.assert_allclose(np.exp(summed), [[0.2, 0.101]])  # several words: probabilities add up
    mean = label_log_scores(word_ll, tokens, owners, 2, "mean")
    np.testing.assert_allclose(np.exp(mean), [[0.2, 0.1 + 0.1]])  # 0.001 ** (1/3) = 0.1
    np.testing.assert_allclose(softmax(summed), [[0.2 / 0.301, 0.101 / 0.301]])
    with pytest.raises(ValueError, match="normalization='max'"):
        label_log_scores(word_ll, tokens, owners, 2, "max")
    with pytest.raises(ValueError, match="Class 2 has no words"):
        label_log_scores(word_ll, tokens, owners, 3)


def test_default_content_free_inputs_are_the_papers():
    assert DEFAULT_CONTENT_FREE == ("N/A", "", "[MASK]")
