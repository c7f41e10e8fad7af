"""Model cards: metadata round-trip through huggingface_hub, body sections, secrets, base-model mapping."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard

from tlnlp.hub import CardSpec, build_model_card, hub_base_model, scrub_secrets

HF_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123"
PASSWORD = "correct-horse-battery-staple"
LABELS = ["negative", "neutral", "positive"]


def card_kwargs(**overrides):
    kwargs = dict(
        model_name="movie-minilm-lora",
        base_model="bundled:minilm",
        task="text-classification",
        labels=LABELS,
        method="lora",
        method_description="Low-rank adapters on the attention projections; the head is trained.",
        dataset_name="bundled:movie_snippets",
        dataset_description="Short movie-review snippets with averaged human sentiment ratings.",
        dataset_license="research use only",
        hub_dataset_id=None,
        metrics={"test_accuracy": 0.8512, "test_f1_macro": 0.8377, "test_mcc": 0.71, "test_loss": 0.41,
                 "test_runtime": 1.25, "test_samples_per_second": 800.0, "eval_accuracy": 0.86,
                 "eval_f1_macro": 0.85, "epoch": 3.0},
        hyperparameters={"learning_rate": 2e-4, "num_train_epochs": 3, "lora_r": 8,
                         "target_modules": ["query", "value"]},
        command="accelerate launch recipes/classification.py --config recipes/configs/x.yaml --seed 1",
        trainable_parameters={"trainable": 148_227, "total": 22_861_443},
        license="apache-2.0",
        tags=["sentiment"],
    )
    kwargs.update(overrides)
    return kwargs


@pytest.fixture
def saved_card(tmp_path):
    card = build_model_card(CardSpec(**card_kwargs()))
    path = tmp_path / "README.md"
    card.save(path)
    return card, path


def test_returns_model_card(saved_card):
    card, _ = saved_card
    assert isinstance(card, ModelCard)


def test_metadata_round_trip(saved_card):
    _, path = saved_card
    data = ModelCard.load(path).data
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.language == "en"
    assert data.license == "apache-2.0"
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "text-classification"
    assert data.tags[:2] == ["tlnlp", "lora"] and "sentiment" in data.tags
    assert data.model_name == "movie-minilm-lora"
    assert data.datasets is None


def test_eval_results_come_from_test_metrics(saved_card):
    _, path = saved_card
    results = ModelCard.load(path).data.eval_results
    by_name = {r.metric_name: r for r in results}
    assert set(by_name) == {"Accuracy", "F1 (macro)", "Matthews correlation"}  # no loss / runtime / speed
    assert by_name["Accuracy"].metric_type == "accuracy"
    assert by_name["Accuracy"].metric_value == pytest.approx(0.8512)
    assert by_name["F1 (macro)"].metric_type == "f1" and by_name["F1 (macro)"].metric_config == "macro"
    assert by_name["Matthews correlation"].metric_type == "matthews_correlation"
    for result in results:
        assert isinstance(result.metric_value, float)
        assert result.dataset_split == "test"
        assert result.task_type == "text-classification"
        assert result.dataset_name == "bundled:movie_snippets"


def test_eval_results_fall_back_to_eval_metrics(tmp_path):
    metrics = {"eval_accuracy": 0.7, "eval_f1_macro": 0.65, "eval_loss": 0.9}
    card = build_model_card(CardSpec(**card_kwargs(metrics=metrics, hub_dataset_id="stanfordnlp/imdb")))
    card.save(tmp_path / "README.md")
    data = ModelCard.load(tmp_path / "README.md").data
    assert {r.metric_type for r in data.eval_results} == {"accuracy", "f1"}
    assert all(r.dataset_split == "validation" for r in data.eval_results)
    assert all(r.dataset_type == "stanfordnlp/imdb" for r in data.eval_results)
    assert data.datasets == ["stanfordnlp/imdb"]


def test_no_metrics_means_no_model_index(tmp_path):
    card = build_model_card(CardSpec(**card_kwargs(metrics={})))
    assert card.data.eval_results is None
    assert "No metrics were recorded" in card.text


def test_body_sections(saved_card):
    card, path = saved_card
    text = ModelCard.load(path).text
    assert text.lstrip().startswith("# movie-minilm-lora\n")
    for heading in ("## Method", "## Training data", "## Results", "## Label map", "## Hyperparameters",
                    "## Reproduce", "## Limitations"):
        assert heading in text, heading
    for index, label in enumerate(LABELS):
        assert f"| {index} | {label} |" in text
    assert "| split | metric | value |" in text
    assert "| test | accuracy | 0.8512 |" in text
    assert "| validation | f1_macro | 0.8500 |" in text
    assert "| test | runtime |" in text  # every metric is listed in the table
    command = "accelerate launch recipes/classification.py --config recipes/configs/x.yaml --seed 1"
    assert f"```bash\n{command}\n```" in text
    assert "| learning_rate | 0.0002 |" in text
    assert '| target_modules | ["query", "value"] |' in text
    assert "148,227 of 22,861,443" in text
    assert "research use only" in text
    assert "domain shift" in text.lower() and "bias" in text.lower()
    assert "research use" in text.split("## Limitations")[1]


def test_extra_sections_and_escaping():
    card = build_model_card(CardSpec(**card_kwargs(labels=["yes|no", "maybe"], extra_sections={"Zero-shot baseline":
                                                                                     "accuracy 0.61"})))
    assert "| 0 | yes\\|no |" in card.text
    assert card.text.rstrip().endswith("## Zero-shot baseline\n\naccuracy 0.61")


def test_tokens_never_reach_the_card(tmp_path):
    hyperparameters = {"learning_rate": 1e-4, "hub_token": HF_TOKEN, "token": HF_TOKEN,
                       "push_to_hub_token": "x", "password": PASSWORD,
                       "nested": {"api_key": PASSWORD, "batch": 8}, "note": f"t={HF_TOKEN}",
                       "max_new_tokens": 16}
    command = (f"HF_TOKEN={HF_TOKEN} accelerate launch recipes/classification.py --hub_token {HF_TOKEN} "
               f"--password={PASSWORD} --max_new_tokens 16 --push_to_hub")
    card = build_model_card(CardSpec(**card_kwargs(hyperparameters=hyperparameters, command=command,
                                          extra_sections={"Notes": f"pushed with {HF_TOKEN}"},
                                          dataset_description=f"token {HF_TOKEN}")))
    path = tmp_path / "README.md"
    card.save(path)
    written = path.read_text()
    for text in (str(card), card.content, written):
        assert HF_TOKEN not in text
        assert PASSWORD not in text
        assert "hub_token" not in text and "HF_TOKEN" not in text and "--password" not in text
        assert "| password |" not in text and "api_key" not in text
    assert "accelerate launch recipes/classification.py --max_new_tokens 16 --push_to_hub" in written
    assert "| max_new_tokens | 16 |" in written  # names that merely contain "token" are kept
    assert "| learning_rate | 0.0001 |" in written


def test_scrub_secrets():
    cleaned = scrub_secrets({"hub_token": "a", "HUB_TOKEN": "b", "secret": 1, "lr": 0.1,
                             "inner": [{"access_key": "k", "x": HF_TOKEN}]})
    assert cleaned == {"lr": 0.1, "inner": [{"x": "<redacted>"}]}


def test_base_model_mapping(tmp_path):
    assert hub_base_model("bundled:minilm") == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_base_model("bundled:smollm2") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_base_model("bundled:nope") is None
    assert hub_base_model("prajjwal1/bert-tiny") == "prajjwal1/bert-tiny"
    assert hub_base_model("bert-base-uncased") == "bert-base-uncased"
    local = tmp_path / "my-model"
    local.mkdir()
    assert hub_base_model(str(local)) is None
    assert hub_base_model("./checkpoints/run1") is None
    assert hub_base_model("not a valid id!") is None


def test_local_base_model_and_dataset_paths_are_not_published(tmp_path):
    local = tmp_path / "checkpoints" / "my-encoder"
    local.mkdir(parents=True)
    data_file = tmp_path / "data" / "reviews.csv"
    card = build_model_card(CardSpec(**card_kwargs(base_model=str(local), dataset_name=str(data_file),
                                          hyperparameters={"output_dir": str(tmp_path / "runs" / "x")})))
    assert card.data.base_model is None
    assert "base_model" not in card.content.split("---")[1]
    assert str(tmp_path) not in card.content
    assert "my-encoder" in card.text and "reviews.csv" in card.text


def test_question_answering_card_has_no_label_map():
    card = build_model_card(CardSpec(**card_kwargs(task="question-answering", labels=[],
                                          metrics={"test_exact_match": 71.0, "test_f1": 80.5})))
    assert card.data.pipeline_tag == "question-answering"
    assert {r.metric_type for r in card.data.eval_results} == {"exact_match", "f1"}
    assert "## Label map" not in card.text


def test_results_card_of_an_evaluation_only_run():
    card = build_model_card(CardSpec(**card_kwargs(method="nli_zeroshot", tags=["baseline", "no-training"],
                                          trainable_parameters=None,
                                          extra_sections={"Prompt": "template v1: This example is {}."})))
    assert "results card" in card.text and "without any training" in card.text
    assert "fine-tuned" not in card.text.split("## Method")[0]
    assert "version of each is recorded" in card.text and "Small training sets" not in card.text
    assert "## Evaluation data" in card.text and "## Training data" not in card.text
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert {r.metric_type for r in card.data.eval_results} == {"accuracy", "f1", "matthews_correlation"}
    assert "no-training" in card.data.tags
    explicit = build_model_card(CardSpec(**card_kwargs(evaluation_only=True)))
    assert "no-training" in explicit.data.tags and "results card" in explicit.text


@pytest.mark.parametrize(("task", "tag"), [("fill-mask", "fill-mask"), ("causal-lm", "text-generation"),
                                          ("multi-label classification", "text-classification"),
                                          ("zero-shot-classification", "zero-shot-classification")])
def test_pipeline_tag_follows_the_task(task, tag):
    card = build_model_card(CardSpec(**card_kwargs(task=task, metrics={"eval_perplexity": 12.5, "eval_loss": 2.5})))
    assert card.data.pipeline_tag == tag
    if task == "fill-mask":
        assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("perplexity", 12.5)]


def test_metadata_shape_as_the_hub_parses_it(saved_card):
    """The YAML front matter parses back to a model-index the Hub's own parser turns into results."""
    import yaml
    from huggingface_hub.repocard_data import model_index_to_eval_results

    _, path = saved_card
    meta = yaml.safe_load(path.read_text().split("---")[1])
    assert {"base_model", "language", "library_name", "pipeline_tag", "tags", "model-index"} <= set(meta)
    (entry,) = meta["model-index"]
    assert entry["name"] == "movie-minilm-lora"
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "movie-minilm-lora" and len(results) == 3
    assert entry["results"][0]["task"]["type"] == "text-classification"
    assert {m["type"] for m in entry["results"][0]["metrics"]} == {"accuracy", "f1", "matthews_correlation"}


def test_licence_is_inherited_from_a_known_base_model():
    assert build_model_card(CardSpec(**card_kwargs(license=None))).data.license == "apache-2.0"  # bundled MiniLM's
    assert build_model_card(CardSpec(**card_kwargs(license=None, base_model="org/unknown"))).data.license is None
    assert build_model_card(CardSpec(**card_kwargs(license="mit"))).data.license == "mit"


def test_adapter_card_names_peft_as_its_library():
    card = build_model_card(CardSpec(**{**card_kwargs(), "tags": ["peft", "adapter"]}))
    assert card.data.library_name == "peft" and "adapter" in card.data.tags
