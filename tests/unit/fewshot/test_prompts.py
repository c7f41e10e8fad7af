import pytest

from tlnlp.fewshot import PromptSpecError, encode_prompts, render_prefix, render_prompt, spec_from_dict
from tlnlp.fewshot.prompts import truncate_field

SPEC = spec_from_dict({
    "version": "1", "instruction": "Classify the sentiment of each text as positive or negative.",
    "template": "Text: {text}\nSentiment: {label}",
    "verbalizer": {"negative": ["negative", "dull film"], "positive": "positive"}}, "test")
DEMOS = [({"text": "a warm and funny film"}, "positive"), ({"text": "dull, slow"}, "negative")]


def test_prompt_assembly_exact_string():
    expected = ("Classify the sentiment of each text as positive or negative.\n\n"
                "Text: a warm and funny film\nSentiment: positive\n\n"
                "Text: dull, slow\nSentiment: negative\n\n"
                "Text: what a ride\nSentiment: positive")
    assert render_prompt(SPEC, DEMOS, {"text": "what a ride"}, "positive") == expected
    assert render_prompt(SPEC, DEMOS, {"text": "what a ride"}) == expected.removesuffix(" positive")


def test_zero_shot_and_no_instruction_and_pairs():
    plain = spec_from_dict({"version": "1", "template": "{text} || {text_pair} => {label}",
                            "separator": "\n", "verbalizer": {"no": "no", "yes": "yes"}}, "t")
    assert render_prefix(plain, []) == ""
    row = {"text": "a", "text_pair": "b"}
    assert render_prompt(plain, [(row, "yes")], row, "no") == "a || b => yes\na || b => no"


def test_truncation_at_word_boundary():
    assert truncate_field("one two three four", 9) == "one two ..."
    assert truncate_field("short", 9) == "short"
    spec = spec_from_dict({"version": "1", "template": "T: {text} L: {label}", "verbalizer": {"a": "x", "b": "y"},
                           "max_field_chars": 7}, "t")
    assert render_prompt(spec, [], {"text": "alpha beta gamma"}, "a") == "T: alpha ... L: x"


def test_chat_template_wraps_the_prompt(bpe_tokenizer):
    chat = spec_from_dict({"version": "1", "template": "Text: {text}\nSentiment: {label}", "chat": True,
                           "verbalizer": {"negative": "negative", "positive": "positive"}}, "t")
    tok = bpe_tokenizer.__class__(tokenizer_object=bpe_tokenizer.backend_tokenizer, eos_token="<|endoftext|>")
    tok.chat_template = ("{% for m in messages %}<|user|>{{ m['content'] }}<|end|>{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    text = render_prompt(chat, [({"text": "fun"}, "positive")], {"text": "meh"}, "negative", tokenizer=tok)
    assert text == "<|user|>Text: fun\nSentiment: positive\n\nText: meh\nSentiment:<|end|><|assistant|>negative"
    with pytest.raises(PromptSpecError, match="no chat template"):
        render_prompt(chat, [], {"text": "meh"}, tokenizer=bpe_tokenizer)
    encoded = encode_prompts(tok, chat, [({"text": "fun"}, "positive")], [{"text": "meh"}], ["negative", "positive"])
    joined = encoded.prefix + encoded.contexts[0] + encoded.continuations[0]
    assert tok.decode(joined) == text


def test_encoding_matches_the_whole_prompt_and_handles_multi_token_words(bpe_tokenizer):
    rows = [{"text": "what a ride"}, {"text": "so dull"}]
    encoded = encode_prompts(bpe_tokenizer, SPEC, DEMOS, rows, ["negative", "positive"])
    assert encoded.candidate_labels == [0, 0, 1]
    assert encoded.prefix_text == render_prefix(SPEC, DEMOS)
    words = [bpe_tokenizer.decode(ids) for ids in encoded.continuations]
    assert words == [" negative", " dull film", " positive"]
    assert len(encoded.continuations[1]) >= 2  # a multi-token verbalizer
    for i, row in enumerate(rows):
        for j, label in [(0, "negative"), (2, "positive")]:
            pieces = encoded.prefix + encoded.contexts[i] + encoded.continuations[j]
            assert bpe_tokenizer.decode(pieces) == render_prompt(SPEC, DEMOS, row, label)
    # the label word is split as in the whole prompt (the query ends with the template's fixed text)
    whole = bpe_tokenizer(render_prompt(SPEC, [], rows[0], "positive"))["input_ids"]
    assert whole[-len(encoded.continuations[2]):] == encoded.continuations[2]
