"""user_errors: every error type whose message names the fix exits with one line and status 2."""

from __future__ import annotations

import pytest

from tlnlp.errors import user_errors


@pytest.mark.parametrize("error", ["zero_shot", "hub_token"])
def test_fixable_errors_exit_with_one_line(error, capsys):
    from tlnlp.hub import HubTokenError
    from tlnlp.zeroshot import ZeroShotError

    raised = {"zero_shot": ZeroShotError("nli_model=x names no entailment class; give an NLI model."),
              "hub_token": HubTokenError("No Hugging Face token: run `hf auth login` or set HF_TOKEN.")}[error]
    with pytest.raises(SystemExit) as exited, user_errors():
        raise raised
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"error: {raised}\n"


def test_programming_errors_keep_their_traceback():
    with pytest.raises(TypeError), user_errors():
        raise TypeError("a bug, not a user error")
