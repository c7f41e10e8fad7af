"""``--method feature_extraction`` and ``--method setfit`` through the classification recipe, end to end."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.recipes.conftest import load_recipe, recipe_args
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)


def _run(model_dir, out, *extra):
    recipe = load_recipe("classification")
    return recipe.main(*parse_args(*TYPES, args=recipe_args(model_dir, out, *extra)))


@pytest.fixture(scope="module")
def fe_run(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("fe") / "run"
    return out, _run(tiny_bert_dir, out, "--method", "feature_extraction", "--head_init", "zero_shot")


def test_feature_extraction_writes_a_safetensors_classifier_and_every_output(fe_run, tiny_bert_dir):
    out, metrics = fe_run
    for name in ("classifier_head.safetensors", "classifier_head.json", "modules.json", "model.safetensors",
                 "train_results.json", "eval_results.json", "test_results.json", "all_results.json",
                 "predictions.jsonl", "confusion_matrix.png", "README.md", "run_config.yaml", "environment.json",
                 "head_fit.json"):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pkl")), "nothing pickled"
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_samples"] == 40
    assert metrics["train_trainable_parameters"] == 2 * 32 + 2  # the head only: labels x (hidden + 1)
    fit = json.loads((out / "head_fit.json").read_text())
    assert fit["head"]["head_init"] == "zero_shot" and "cv_log_loss" in fit["head"]["prior_strength_search"]
    assert json.loads((out / "all_results.json").read_text())["head_prior_strength"] == \
        fit["head"]["head_prior_strength"]
    assert "mean pooling" in fit["pooling"] and "no sentence-transformers config" in fit["pooling"]
    assert fit["encode_precision"] == "fp32"  # the suite pins --bf16 auto to fp32


def test_feature_extraction_card_says_how_the_head_was_fitted(fe_run):
    out, _ = fe_run
    card = (out / "README.md").read_text()
    assert "library_name: sentence-transformers" in card
    assert "## Head" in card and "cross-validation" in card and "labelled training rows only" in card
    assert "mean pooling" in card and "lora_r" not in card  # only the method's own settings


def test_feature_extraction_encodes_under_bf16_when_the_run_trains_in_it(tmp_path, tiny_bert_dir, fe_run):
    out = tmp_path / "bf16"
    metrics = _run(tiny_bert_dir, out, "--method", "feature_extraction", "--head_init", "zero_shot", "--bf16", "true")
    assert json.loads((out / "head_fit.json").read_text())["encode_precision"] == "bf16"
    assert "bf16 autocast" in (out / "README.md").read_text()
    assert abs(metrics["test_accuracy"] - fe_run[1]["test_accuracy"]) <= 0.1  # rounding, not another model


def test_feature_extraction_run_loads_as_a_pipeline_with_real_labels(fe_run):
    from tlnlp import load_pipeline

    out, _ = fe_run
    pipe = load_pipeline(out)
    first = pipe("A gripping, beautifully acted film.")
    assert first[0]["label"] in ("negative", "positive")
    ranked = pipe(["Dull.", "Great fun."], top_k=None)
    assert [len(r) for r in ranked] == [2, 2] and abs(sum(p["score"] for p in ranked[0]) - 1) < 1e-6
    saved = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    again = pipe([saved[0]["text"]])[0]
    assert again["label"] == saved[0]["prediction"]


def test_setfit_trains_the_body_writes_checkpoints_and_resumes(tmp_path, tiny_bert_dir, monkeypatch):
    from sentence_transformers import SentenceTransformerTrainer

    out = tmp_path / "setfit"
    flags = ("--method", "setfit", "--setfit_max_steps", "3", "--setfit_save_steps", "2", "--setfit_batch_size", "4")
    metrics = _run(tiny_bert_dir, out, *flags)
    fit = json.loads((out / "head_fit.json").read_text())
    assert fit["body"]["body_steps"] == 3 and fit["body"]["resumed_from"] is None
    assert metrics["train_body_steps"] == 3 and metrics["train_trainable_parameters"] == \
        metrics["train_total_parameters"]
    assert "library_name: setfit" in (out / "README.md").read_text()
    assert yaml.safe_load((out / "run_config.yaml").read_text())["setfit_max_steps"] == 3

    # killed during step 3, after the checkpoint of step 2: resuming trains the last step only
    real, calls = SentenceTransformerTrainer.training_step, []

    def dies_at_step_three(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerTrainer, "training_step", dies_at_step_three)
    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_bert_dir, killed, *flags)
    assert (killed / "checkpoint-2").is_dir() and not (killed / "classifier_head.json").exists()
    resumed = _run(tiny_bert_dir, killed, *flags, "--resume_from_checkpoint", "last")
    fit = json.loads((killed / "head_fit.json").read_text())
    assert fit["body"]["resumed_from"] == "checkpoint-2" and fit["body"]["body_steps"] == 3
    assert len(calls) == 4  # 2 before the kill, the one that died, 1 after the resume
    assert resumed["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_text_pairs_and_multi_label_data_are_refused_with_the_fix():
    from tlnlp.runs import check_embedding_data

    class Data:
        name, multi_label = "pairs", False
        splits = {"train": type("S", (), {"column_names": ["text", "text_pair", "label"]})()}

    with pytest.raises(ValueError, match="has text pairs. Use --method full"):
        check_embedding_data(Data(), "setfit")
    Data.multi_label = True
    with pytest.raises(ValueError, match="is multi-label"):
        check_embedding_data(Data(), "feature_extraction")


@pytest.mark.slow
def test_bundled_minilm_feature_extraction_uses_its_own_pooling(tmp_path):
    out = tmp_path / "minilm"
    recipe = load_recipe("classification")
    metrics = recipe.main(*parse_args(*TYPES, args=[
        "--model_name_or_path", "bundled:minilm", "--dataset_name", "bundled:movie_sentiment",
        "--train_samples_per_class", "8", "--max_eval_samples", "16", "--max_predict_samples", "64",
        "--max_seq_length", "48", "--method", "feature_extraction", "--output_dir", str(out)]))
    fit = json.loads((out / "head_fit.json").read_text())
    assert "the model's sentence-transformers config" in fit["pooling"]
    assert metrics["train_samples"] == 16 and metrics["test_accuracy"] > 0.55


def test_sentence_fine_tuning_trains_encoder_and_anchored_head_and_resumes(tmp_path, tiny_bert_dir, monkeypatch):
    from transformers import Trainer

    from tlnlp import load_pipeline

    flags = ("--method", "sentence_fine_tuning", "--head_init", "zero_shot", "--head_prior_strength", "auto",
             "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2")
    out = tmp_path / "sft"
    metrics = _run(tiny_bert_dir, out, *flags)
    fit = json.loads((out / "head_fit.json").read_text())
    assert fit["head"]["trained_with_encoder"] and fit["head"]["head_init"] == "zero_shot"
    assert "cv_log_loss" in fit["head"]["prior_strength_search"]
    assert metrics["train_steps"] == 4 and metrics["train_trainable_parameters"] == metrics["train_total_parameters"]
    card = (out / "README.md").read_text()
    assert "linear layer trained with the encoder" in card and "frozen encoder's embeddings" in card
    assert not list(out.glob("*.bin")) and (out / "classifier_head.safetensors").is_file()
    assert load_pipeline(out)("Great fun.")[0]["label"] in ("negative", "positive")

    # killed during step 3, after the checkpoint of step 2: resuming trains steps 3 and 4 only
    real, calls = Trainer.training_step, []

    def dies_at_step_three(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", dies_at_step_three)
    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_bert_dir, killed, *flags)
    assert (killed / "checkpoint-2").is_dir() and not (killed / "classifier_head.json").exists()
    resumed = _run(tiny_bert_dir, killed, *flags, "--resume_from_checkpoint", "last")
    assert len(calls) == 5 and resumed["train_steps"] == 4  # 2, the one that died, then steps 3 and 4
    assert resumed["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_setfit_chooses_its_body_epochs_on_the_labelled_rows(tmp_path, tiny_bert_dir, monkeypatch):
    from tlnlp.methods import METHODS
    from tlnlp.methods.setfit.epochs import CHOICE_FILE

    setfit = METHODS.get("setfit")
    real, bodies = type(setfit).train_body, []

    def counting(self, encoder, inputs, args):
        bodies.append((len(inputs.texts), args.setfit_num_epochs))
        return real(self, encoder, inputs, args)

    monkeypatch.setattr(type(setfit), "train_body", counting)
    out = tmp_path / "setfit"
    metrics = _run(tiny_bert_dir, out, "--method", "setfit", "--setfit_epochs_choices", "2", "1",
                   "--setfit_batch_size", "8", "--train_samples_per_class", "6")
    search = json.loads((out / "head_fit.json").read_text())["body"]["epochs_search"]
    assert search["choices"] == [1, 2] and search["folds"] == 3 and set(search["cv_accuracy"]) == {"1", "2"}
    # 3 folds of 8 of the 12 labelled rows per choice, then the run's body on all 12 with the chosen epochs
    assert sorted(bodies[:-1]) == [(8, 1)] * 3 + [(8, 2)] * 3 and bodies[-1] == (12, search["chosen"])
    assert metrics["train_body_epochs"] == search["chosen"]
    assert json.loads((out / CHOICE_FILE).read_text())["chosen"] == search["chosen"]
    card = (out / "README.md").read_text()
    assert "## SetFit body" in card and "3-fold cross-validation on the labelled training rows only" in card

    # a resumed run reads the choice it made instead of training the fold bodies again
    import numpy as np

    from tlnlp.methods.heads import FitInputs
    from tlnlp.methods.setfit.epochs import choose_body_epochs

    key = json.loads((out / CHOICE_FILE).read_text())["key"]
    labels = np.repeat(np.arange(len(key["labels"])), key["labels"])
    again = FitInputs(texts=["unused"] * len(labels), labels=labels, label_names=["negative", "positive"],
                      seed=key["seed"], output_dir=out)

    def no_training(*_):
        raise AssertionError("trained a fold body again")

    assert choose_body_epochs(None, again, MethodArgs(method="setfit", setfit_epochs_choices=[1, 2]),
                              no_training)[0] == search["chosen"]


def test_feature_extraction_self_trains_on_the_training_texts_left_out(tmp_path, tiny_bert_dir, monkeypatch):
    from tlnlp.methods.heads import method as head_method

    seen = {}
    real = head_method.fit_head

    def recording(x, y, *args, pool=None, **kwargs):
        seen.update(rows=len(x), pool=None if pool is None else len(pool))
        return real(x, y, *args, pool=pool, **kwargs)

    monkeypatch.setattr(head_method, "fit_head", recording)
    out = tmp_path / "st"
    metrics = _run(tiny_bert_dir, out, "--method", "feature_extraction", "--self_training_texts", "rest",
                   "--self_training_samples", "50", "--self_training_per_class", "8")
    assert seen == {"rows": 96, "pool": 50}  # 50 of the training texts that --max_train_samples 96 left out
    found = json.loads((out / "head_fit.json").read_text())["head"]["self_training"]
    assert found["pool_rows"] == 50 and found["per_class"] == 8 and 0 < found["pseudo_rows"] <= 16
    assert json.loads((out / "all_results.json").read_text())["self_training_per_class"] == 8
    assert 0 <= metrics["test_accuracy"] <= 1
    assert "Self-training: the head labelled 50 unlabelled texts" in (out / "README.md").read_text()



def test_setfit_chooses_its_self_training_count_with_its_epochs_on_fold_bodies(tmp_path, tiny_bert_dir):
    out = tmp_path / "setfit_st"
    _run(tiny_bert_dir, out, "--method", "setfit", "--setfit_epochs_choices", "1", "--setfit_batch_size", "8",
         "--train_samples_per_class", "6", "--self_training_texts", "rest", "--self_training_samples", "40")
    fit = json.loads((out / "head_fit.json").read_text())
    search = fit["body"]["epochs_search"]
    # every count scored on the 3 fold bodies; the run's head self-trains with the count chosen there
    assert search["self_training_per_class"] in (0, 8, 32, 128) and search["key"]["unlabeled"] == 40
    assert set(search["self_training_search"]["cv_accuracy"]) == {"0", "8", "32", "128"}
    assert fit["head"]["self_training"]["per_class"] == search["self_training_per_class"]
    assert fit["head"]["self_training_search"]["fold_bodies"] is True
    card = (out / "README.md").read_text()
    assert "chosen after the body's epochs by 3-fold cross-validation" in card


def test_setfit_records_a_self_training_count_of_0_chosen_on_fold_bodies(tmp_path, tiny_bert_dir, monkeypatch):
    from tlnlp.methods.setfit import method as setfit_method

    search = {"chosen": 1, "choices": [1], "folds": 3, "cv_accuracy": {"1": 1.0}, "cv_log_loss": {"1": 0.1},
              "self_training_per_class": 0,
              "self_training_search": {"folds": 3, "fold_bodies": True, "cv_accuracy": {"0": 1.0, "8": 0.5},
                                       "cv_log_loss": {"0": 0.1, "8": 0.9}}}
    monkeypatch.setattr(setfit_method, "choose_body_epochs", lambda *_: (1, dict(search)))
    out = tmp_path / "setfit_st0"
    _run(tiny_bert_dir, out, "--method", "setfit", "--setfit_epochs_choices", "1", "--setfit_batch_size", "8",
         "--train_samples_per_class", "6", "--self_training_texts", "rest", "--self_training_samples", "40")
    head = json.loads((out / "head_fit.json").read_text())["head"]
    assert head["self_training"] == {"per_class": 0, "pool_rows": 40, "pseudo_rows": 0}
    assert "Self-training: none (0 pseudo-labelled texts per class of 40 unlabelled, chosen after the body's " \
           "epochs" in (out / "README.md").read_text()


def test_setfit_body_trains_on_texts_cut_to_max_seq_length(tmp_path, tiny_bert_dir, monkeypatch):
    from sentence_transformers import SentenceTransformerTrainer

    seen, real = [], SentenceTransformerTrainer.training_step

    def recording(self, model, inputs, *args, **kwargs):
        seen.append((model.max_seq_length, max(v.shape[-1] for k, v in inputs.items() if k.endswith("input_ids"))))
        return real(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerTrainer, "training_step", recording)
    out = tmp_path / "setfit_cut"
    _run(tiny_bert_dir, out, "--method", "setfit", "--setfit_max_steps", "2", "--setfit_batch_size", "4",
         "--max_seq_length", "6")
    # the library cuts only the head's texts: the body's pairs are cut to --max_seq_length too
    assert seen and all(limit == 6 and tokens <= 6 for limit, tokens in seen)
    saved = json.loads((out / "sentence_bert_config.json").read_text()).get("max_seq_length")
    assert saved != 6  # the encoder's own limit is left as it was


def test_setfit_fold_bodies_score_the_runs_own_anchored_head(tmp_path, tiny_bert_dir, monkeypatch):
    from tlnlp.methods.setfit import epochs

    seen = []
    real = epochs.fit_head

    def recording(x, y, num_labels, options, prior=None, *args, **kwargs):
        seen.append((options.head, options.head_prior_strength, None if prior is None else prior.shape))
        return real(x, y, num_labels, options, prior, *args, **kwargs)

    monkeypatch.setattr(epochs, "fit_head", recording)
    out = tmp_path / "setfit_anchored_folds"
    _run(tiny_bert_dir, out, "--method", "setfit", "--setfit_epochs_choices", "1", "--setfit_batch_size", "8",
         "--train_samples_per_class", "6", "--head_init", "zero_shot", "--head_prior_strength", "10")
    # one fit per fold (3), each the run's head anchored at the prototypes of that fold's body (2 labels x dim)
    assert len(seen) == 3 and all(s[:2] == ("logistic", "10") and s[2] is not None and s[2][0] == 2 for s in seen)


def test_self_training_texts_come_from_a_file_or_the_rest_and_never_from_labelled_rows(tmp_path, tiny_bert_dir):
    from types import SimpleNamespace

    from tlnlp.runs.embedding import _unlabeled_texts
    from tlnlp.tasks import TASKS

    task = TASKS.get("classification")
    data_args = parse_args(DataArgs, args=["--dataset_name", "bundled:movie_sentiment",
                                           "--train_samples_per_class", "4"])[0]
    data = task.load_data(data_args)
    run = SimpleNamespace(data_args=data_args, train_args=SimpleNamespace(seed=0),
                          method_args=SimpleNamespace(self_training_texts="rest", self_training_samples=30))
    rest = _unlabeled_texts(run, task, data)
    assert len(rest) == 30 and not set(rest) & set(data.splits["train"]["text"])
    assert rest == _unlabeled_texts(run, task, data)  # seeded
    (tmp_path / "pool.txt").write_text("one review\n\nanother review\n", encoding="utf-8")
    run.method_args.self_training_texts = str(tmp_path / "pool.txt")
    assert _unlabeled_texts(run, task, data) == ["one review", "another review"]
    run.method_args.self_training_texts = "rest"
    run.data_args = parse_args(DataArgs, args=["--dataset_name", "bundled:movie_sentiment"])[0]
    with pytest.raises(ValueError, match="self_training_texts='rest' needs training texts left out"):
        _unlabeled_texts(run, task, data)


def test_setfit_body_trains_on_the_label_texts_too(tmp_path, tiny_bert_dir, monkeypatch):
    from setfit import Trainer

    from tlnlp.zeroshot import label_prior

    seen, real = [], Trainer.train_embeddings

    def recording(self, x_train, y_train, *args, **kwargs):
        seen.append((list(x_train), list(y_train)))
        return real(self, x_train, y_train, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_embeddings", recording)
    out = tmp_path / "setfit_label_texts"
    _run(tiny_bert_dir, out, "--method", "setfit", "--setfit_epochs_choices", "1", "--setfit_batch_size", "8",
         "--train_samples_per_class", "6", "--head_init", "zero_shot", "--setfit_label_texts")
    texts = label_prior("auto", "bundled:movie_sentiment", ["negative", "positive"]).texts
    extra = [(text, label) for label, group in enumerate(texts) for text in group]
    # 3 fold bodies on 8 labelled rows and the final body on all 12, each with every label text appended
    assert [len(x) for x, _ in seen] == [8 + len(extra)] * 3 + [12 + len(extra)]
    for x, y in seen:
        assert list(zip(x, y, strict=True))[-len(extra):] == extra
    fit = json.loads((out / "head_fit.json").read_text())
    assert fit["body"]["label_text_rows"] == len(extra) and fit["head"]["head_init"] == "zero_shot"
    assert "label texts joined the labelled rows" in (out / "README.md").read_text()
    from tlnlp.config.parser import ConfigError

    with pytest.raises(ConfigError, match="setfit_label_texts=True needs .* --head_init zero_shot"):
        _run(tiny_bert_dir, tmp_path / "refused", "--method", "setfit", "--setfit_label_texts")
