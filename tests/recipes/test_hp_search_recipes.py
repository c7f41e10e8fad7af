"""--hp_search on the other training recipes: a 2-trial optuna search each, its outputs, and the test split untouched.

Each run checks that the study finished 2 trials, that ``trials.csv``/``trials.md``/``search.png`` exist, that
``best_config.yaml`` parses with the recipe and holds the best trial's values, that the search Trainer got only the
train and validation splits, and that nothing was predicted or scored under another prefix during the search.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.recipes.conftest import load_recipe, recipe_args
from tlnlp.config import parse_args
from tlnlp.search import HpSearchError
from tlnlp.search import runner as search_runner
from tlnlp.training import TlnlpTrainer

pytest.importorskip("optuna")


@pytest.fixture
def seen(monkeypatch):
    """What the search saw: the splits its Trainer got, every evaluation/prediction (searching?, prefix)."""
    found = {"splits": [], "scored": []}
    build, evaluate, predict = search_runner.build_trainer, TlnlpTrainer.evaluate, TlnlpTrainer.predict

    def spy_build(prepared, tokenizer, datasets, *args, **kwargs):
        found["splits"].append(sorted(datasets))
        return build(prepared, tokenizer, datasets, *args, **kwargs)

    def spy_evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        found["scored"].append((self.hp_search_backend is not None, metric_key_prefix))
        return evaluate(self, eval_dataset, ignore_keys, metric_key_prefix)

    def spy_predict(self, test_dataset, *args, **kwargs):
        found["scored"].append((self.hp_search_backend is not None, kwargs.get("metric_key_prefix", "test")))
        return predict(self, test_dataset, *args, **kwargs)

    monkeypatch.setattr(search_runner, "build_trainer", spy_build)
    monkeypatch.setattr(TlnlpTrainer, "evaluate", spy_evaluate)
    monkeypatch.setattr(TlnlpTrainer, "predict", spy_predict)
    return found


def _space(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text, encoding="utf-8")
    return ["--hp_search", "optuna", "--hp_trials", "2", "--hp_space", str(path)]


def _run(name, flags):
    recipe = load_recipe(name)
    return recipe, recipe.main(*parse_args(*recipe.ARGUMENTS, args=flags, defaults=recipe.DEFAULTS))


def _check_outputs(out, objective):
    """The study finished 2 trials; the trials table and the plot exist."""
    search = out / "hp_search"
    with sqlite3.connect(search / "study.db") as con:
        states = [s for (s,) in con.execute("SELECT state FROM trials ORDER BY number")]
    assert states == ["COMPLETE", "COMPLETE"]
    lines = (search / "trials.csv").read_text().splitlines()
    assert lines[0].startswith(f"trial,state,{objective},") and len(lines) == 3
    assert (search / "trials.md").read_text().startswith(f"| trial | state | {objective} |")
    assert (search / "search.png").read_bytes()[:4] == b"\x89PNG"


def _check_search(recipe, out, metrics, seen, objective, *, settings=None, card=None):
    """The search's outputs, its best config against its best trial, and what it scored; the parsed best config.

    ``settings(parsed)`` gives the objects that hold the run's settings (default: the parsed ones); ``card``: the
    card that reports the search (default: the run's).
    """
    _check_outputs(out, objective)
    assert seen["splits"] == [["train", "validation"]]  # the search Trainer never holds the test split
    during = [prefix for searching, prefix in seen["scored"] if searching]
    assert len(during) == 2 and set(during) == {"eval"}  # one validation score per trial, no prediction
    return _check_best_config(recipe, out, metrics, objective, settings=settings, card=card)


def _check_best_config(recipe, out, metrics, objective, *, settings=None, card=None):
    """best_config.yaml parses with the recipe and holds the best trial's values; the card reports the search."""
    search = out / "hp_search"
    best = int(metrics["hp_search_best_trial"])
    assert metrics["hp_search_trials"] == 2 and metrics[f"hp_search_best_{objective}"] is not None
    chosen = json.loads((search / f"trial-{best}" / "trial.json").read_text())["values"]
    parsed = parse_args(*recipe.ARGUMENTS, args=["--config", str(search / "best_config.yaml")],
                        defaults=recipe.DEFAULTS)
    holders = settings(parsed) if settings is not None else parsed
    for name, value in chosen.items():
        found = [getattr(obj, name) for obj in holders if hasattr(obj, name)]
        assert found and found[0] == pytest.approx(value), name
    assert next(obj for obj in parsed if hasattr(obj, "hp_search")).hp_search == "none"
    assert "Hyperparameter search" in (card or out / "README.md").read_text()
    return parsed


def test_lm_adaptation_searches_on_held_out_loss(tmp_path, tiny_bert_dir, seen):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the cat {i} sat on the mat and looked at the dog" for i in range(80)),
                      encoding="utf-8")
    out = tmp_path / "lm"
    flags = ["--model_name_or_path", str(tiny_bert_dir), "--train_file", str(corpus), "--output_dir", str(out),
             "--max_seq_length", "32", "--per_device_train_batch_size", "8", "--max_steps", "3",
             "--learning_rate", "3e-3", "--perplexity_max_texts", "4", "--report_to", "none",
             *_space(tmp_path, "learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n"
                               "discriminative_factor: {type: categorical, choices: [1.5, 2.0]}\n")]
    recipe, metrics = _run("lm_adaptation", flags)
    _check_search(recipe, out, metrics, seen, "eval_loss")
    values = [float(line.split(",")[2]) for line in (out / "hp_search" / "trials.csv").read_text().splitlines()[1:]]
    assert metrics["hp_search_best_eval_loss"] == pytest.approx(min(values), rel=1e-4)  # minimised
    assert (out / "model.safetensors").is_file() and "perplexity_after" in metrics


def test_train_entailment_searches_on_validation_pairs(tmp_path, tiny_bert_dir, seen):
    from tests.recipes.test_train_entailment import _args

    out = tmp_path / "entail"
    flags = _args(tiny_bert_dir, out, *_space(tmp_path, "learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, "
                                                        "log: true}\nweight_decay: {type: float, low: 0.0, "
                                                        "high: 0.1}\n"))
    recipe, metrics = _run("train_entailment", flags)
    _check_search(recipe, out, metrics, seen, "eval_accuracy")
    assert any(k.startswith("zeroshot_") for k in metrics)  # unseen tasks scored after the search, by the final model


def test_ulmfit_searches_the_classifier_stage_from_its_adapted_model(tmp_path, tiny_bert_dir, seen):
    out = tmp_path / "ulmfit"
    flags = recipe_args(tiny_bert_dir, out, "--lm_max_steps", "3", "--perplexity_max_texts", "4",
                        "--max_train_samples", "32", "--max_steps", "3",
                        *_space(tmp_path, "learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n"))
    recipe, metrics = _run("ulmfit", flags)
    parsed = _check_search(recipe, out, metrics, seen, "eval_accuracy")
    stage = next(obj for obj in parsed if hasattr(obj, "lm_adaptation"))
    assert not stage.lm_adaptation and parsed[0].model_name_or_path == str(out / "lm_adaptation")
    assert "lm_perplexity_after" in metrics and "test_accuracy" in metrics


def _killed_after_one_trial_then_rerun(name, flags, out, monkeypatch, kept=None):
    """Run a recipe's search, kill it after its first trial, rerun the same command; its metrics, and the mtime of
    ``kept`` (a file of an earlier stage) read between the two runs (None without ``kept``)."""
    from tlnlp.config.run_folder import release_output_dir

    recipe, real = load_recipe(name), search_runner.run_optuna

    def one_trial_then_killed(trainer, space, objective, settings):
        real(trainer, space, objective, {**settings, "trials": 1})
        raise KeyboardInterrupt

    monkeypatch.setattr(search_runner, "run_optuna", one_trial_then_killed)
    with pytest.raises(KeyboardInterrupt):
        recipe.main(*parse_args(*recipe.ARGUMENTS, args=flags, defaults=recipe.DEFAULTS))
    release_output_dir(out)  # as the killed process would
    monkeypatch.setattr(search_runner, "run_optuna", real)
    stamp = kept.stat().st_mtime_ns if kept is not None else None
    metrics = recipe.main(*parse_args(*recipe.ARGUMENTS, args=flags, defaults=recipe.DEFAULTS))  # the same command
    with sqlite3.connect(out / "hp_search" / "study.db") as con:
        assert [s for (s,) in con.execute("SELECT state FROM trials ORDER BY number")] == ["COMPLETE", "COMPLETE"]
    return metrics, stamp


def test_ulmfit_continues_an_interrupted_search_without_redoing_stage_1(tmp_path, tiny_bert_dir, monkeypatch):
    out = tmp_path / "ulmfit"
    flags = recipe_args(tiny_bert_dir, out, "--lm_max_steps", "2", "--perplexity_max_texts", "4",
                        "--max_train_samples", "32", "--max_steps", "2",
                        *_space(tmp_path, "learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n"))
    kept = out / "lm_adaptation" / "model.safetensors"
    metrics, stamp = _killed_after_one_trial_then_rerun("ulmfit", flags, out, monkeypatch, kept)
    assert kept.stat().st_mtime_ns == stamp  # stage 1 not redone
    assert metrics["hp_search_trials"] == 2 and (out / "model.safetensors").is_file()


STAGES = ["dataset=bundled:trec6,max_train_samples=32,max_steps=2",
          "dataset=bundled:movie_sentiment,max_train_samples=32,max_steps=3,learning_rate=1e-3"]
#: learning_rate is also the last stage's own key (it overrides the chain's); adam_beta2 is one a stage cannot set.
STAGED_SPACE = ("learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n"
                "adam_beta2: {type: float, low: 0.9, high: 0.999}\n")


def _staged_flags(tiny_bert_dir, out, tmp_path):
    from tests.recipes.test_staged import _args

    return _args(tiny_bert_dir, out, STAGES, *_space(tmp_path, STAGED_SPACE))


def _last_stage(parsed):
    """The settings the last stage of a parsed staged config trains with: its training arguments, its method's."""
    from tlnlp.staged import build_stage_specs
    from tlnlp.staged.spec import stage_training_args

    _, method_args, staged_args, train_args, _ = parsed
    spec = build_stage_specs(staged_args.stages, method_args, staged_args.data_defaults())[-1]
    return [stage_training_args(train_args, spec, "unused"), spec.method_args]


def _trial_eval_loss(search, number):
    history = json.loads((search / f"trial-{number}" / "trial.json").read_text())["log_history"]
    return [entry for entry in history if "eval_loss" in entry][-1]["eval_loss"]


def test_staged_searches_its_last_stage_and_the_best_config_reruns_the_best_trial(tmp_path, tiny_bert_dir, seen):
    out = tmp_path / "staged"
    recipe, metrics = _run("staged", _staged_flags(tiny_bert_dir, out, tmp_path))
    target = out / "stage2_movie_sentiment"
    parsed = _check_search(recipe, out, metrics, seen, "eval_accuracy", settings=_last_stage,
                           card=target / "README.md")
    best = int(metrics["hp_search_best_trial"])
    chosen = json.loads((out / "hp_search" / f"trial-{best}" / "trial.json").read_text())["values"]
    # the chain's last stage trained with the best values, from stage 1's model, and scored what its trial scored
    record = json.loads((target / "stage_record.json").read_text())
    assert record["learning_rate"] == pytest.approx(chosen["learning_rate"]) and record["start_model"] == "stage1_trec6"
    trial_loss = _trial_eval_loss(out / "hp_search", best)
    assert json.loads((target / "eval_results.json").read_text())["eval_loss"] == pytest.approx(trial_loss)
    # best_config.yaml: the last stage alone, its own keys holding the best values, from stage 1's folder
    model_args, _, staged_args, train_args, _ = parsed
    assert model_args.model_name_or_path == str(out / "stage1_trec6") and len(staged_args.stages) == 1
    assert train_args.adam_beta2 == pytest.approx(chosen["adam_beta2"])  # not a stage key: the chain's flag
    again = recipe.main(*parsed)  # reruns the best trial: the same validation loss, stage 1 not trained again
    rerun = tmp_path / "staged-best" / "stage1_movie_sentiment"
    assert json.loads((rerun / "eval_results.json").read_text())["eval_loss"] == pytest.approx(trial_loss)
    assert again["final_eval_accuracy"] == pytest.approx(metrics["hp_search_best_eval_accuracy"])


def test_staged_continues_an_interrupted_search_without_training_the_earlier_stages(tmp_path, tiny_bert_dir,
                                                                                   monkeypatch):
    out = tmp_path / "staged"
    kept = out / "stage1_trec6" / "model.safetensors"
    metrics, stamp = _killed_after_one_trial_then_rerun("staged", _staged_flags(tiny_bert_dir, out, tmp_path), out,
                                                        monkeypatch, kept)
    assert kept.stat().st_mtime_ns == stamp  # stage 1 not trained again
    assert metrics["hp_search_trials"] == 2 and (out / "stage2_movie_sentiment" / "model.safetensors").is_file()


def test_staged_refuses_a_search_with_rehearsal_before_any_work(tmp_path, tiny_bert_dir):
    from tlnlp.staged import StageSpecError

    out = tmp_path / "staged"
    flags = [*_staged_flags(tiny_bert_dir, out, tmp_path), "--rehearsal_samples", "4"]
    with pytest.raises(StageSpecError, match=r"^rehearsal_samples=4 with a hyperparameter search: .*Fix: drop"):
        _run("staged", flags)
    assert not out.exists()


MULTITASK = ["dataset=bundled:movie_sentiment,train_samples_per_class=8", "dataset=bundled:trec6,max_train_samples=32"]
#: A method option too: each trial applies LoRA to its own multi-task model with the trial's rank.
MULTITASK_SPACE = ("learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n"
                   "lora_r: {type: categorical, choices: [4, 8]}\n")


def test_multitask_searches_the_multitask_model_on_the_mean_of_its_tasks_validation(tmp_path, tiny_bert_dir, seen,
                                                                                    monkeypatch):
    from tests.recipes.test_multitask import _args

    built, real = [], search_runner._search_trainer

    def spy(setup, space, folder):  # what the search's Trainer holds
        trainer = real(setup, space, folder)
        built.append((type(trainer).__name__, trainer.train_dataset.sizes,
                      {name: len(rows) for name, rows in trainer.eval_dataset.items()}))
        return trainer

    monkeypatch.setattr(search_runner, "_search_trainer", spy)
    out = tmp_path / "multitask"
    recipe, metrics = _run("multitask", _args(tiny_bert_dir, out, "--max_steps", "4", "--method", "lora",
                                              *_space(tmp_path, MULTITASK_SPACE), tasks=MULTITASK))
    _check_outputs(out, "eval_accuracy")
    parsed = _check_best_config(recipe, out, metrics, "eval_accuracy")
    assert parsed[2].tasks == MULTITASK and parsed[1].method == "lora"
    # the search's Trainer: the multi-task one, on the tasks' training rows and validation rows, never their test rows
    assert built == [("SearchMultiTaskTrainer", [16, 32], {"movie_sentiment": 32, "trec6": 32})]
    assert seen["splits"] == [] and not [p for searching, p in seen["scored"] if searching and p.startswith("test")]
    during = {p for searching, p in seen["scored"] if searching}
    assert during == {"eval", "eval_movie_sentiment", "eval_trec6"}  # every task's validation, and their means
    # the objective is the mean over the tasks, and the final run (built as the trials were) scores the best trial's
    best = int(metrics["hp_search_best_trial"])
    history = json.loads((out / "hp_search" / f"trial-{best}" / "trial.json").read_text())["log_history"]
    last = [entry for entry in history if "eval_accuracy" in entry][-1]
    tasks = [[e[key] for e in history if key in e][-1] for key in ("eval_movie_sentiment_accuracy",
                                                                   "eval_trec6_accuracy")]
    assert last["eval_accuracy"] == pytest.approx(sum(tasks) / 2)
    assert last["eval_accuracy"] == pytest.approx(metrics["hp_search_best_eval_accuracy"])
    assert metrics["eval_accuracy"] == pytest.approx(last["eval_accuracy"])
    assert metrics["eval_loss"] == pytest.approx(last["eval_loss"], rel=1e-4)
    assert "test_accuracy" in metrics  # the test splits are scored by the final model only


#: A DomainArgs option too: each trial builds its own domain classifier with the trial's λ_max.
DOMAIN_SPACE = ("learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n"
                "domain_loss_weight: {type: float, low: 0.0, high: 1.0}\n")


def test_multitask_continues_an_interrupted_search(tmp_path, tiny_bert_dir, monkeypatch):
    from tests.recipes.test_multitask import _args

    out = tmp_path / "multitask"
    flags = _args(tiny_bert_dir, out, "--max_steps", "2", "--method", "lora", *_space(tmp_path, MULTITASK_SPACE),
                  tasks=MULTITASK)
    metrics, _ = _killed_after_one_trial_then_rerun("multitask", flags, out, monkeypatch)
    assert metrics["hp_search_trials"] == 2 and "eval_accuracy" in metrics


def _domain_flags(tiny_bert_dir, out, tmp_path, *extra, **kwargs):
    from tests.recipes.test_domain_adaptation import _args

    return _args(tiny_bert_dir, out, "--max_steps", "4", "--a_distance_samples", "0", *_space(tmp_path, DOMAIN_SPACE),
                 *extra, **kwargs)


def _last(history, key):
    return [entry for entry in history if key in entry][-1][key]


def test_domain_adaptation_searches_dann_on_the_targets_labelled_validation_split(tmp_path, tiny_bert_dir, seen,
                                                                                 monkeypatch):
    from tlnlp.domain import dann_lambda

    built, real = [], search_runner._search_trainer

    def spy(setup, space, folder):  # what the search's Trainer holds
        trainer = real(setup, space, folder)
        built.append((type(trainer).__name__, len(trainer.train_dataset), len(trainer.eval_dataset),
                      len(trainer.target_eval_dataset)))
        return trainer

    monkeypatch.setattr(search_runner, "_search_trainer", spy)
    out = tmp_path / "dann"
    recipe, metrics = _run("domain_adaptation", _domain_flags(tiny_bert_dir, out, tmp_path))
    _check_outputs(out, "eval_target_accuracy")
    parsed = _check_best_config(recipe, out, metrics, "eval_target_accuracy")  # domain_loss_weight included
    # the trials: DANN's Trainer on the source rows paired with target texts, scored on both validation splits only
    assert built == [("SearchDomainAdversarialTrainer", 96, 32, 32)]
    assert seen["splits"] == []  # the recipe's own Trainer builder, never handed a test split
    assert [p for searching, p in seen["scored"] if searching] == ["eval", "eval_target"] * 2
    # each trial trained with its own λ_max (λ of its last logged step: 3 of 4 steps done)
    search = out / "hp_search"
    trials = [json.loads((search / f"trial-{n}" / "trial.json").read_text()) for n in (0, 1)]
    for trial in trials:
        weight = trial["values"]["domain_loss_weight"]
        assert _last(trial["log_history"], "dann_lambda") == pytest.approx(round(dann_lambda(0.75, weight, 10.0), 4))
    assert trials[0]["values"] == {"learning_rate": pytest.approx(1e-3), "domain_loss_weight": 1.0}  # the flags'
    # the objective is the target's validation score; the final run, built as the trials were, scores the best one's
    best = trials[int(metrics["hp_search_best_trial"])]
    assert _last(best["log_history"], "eval_target_accuracy") == pytest.approx(
        metrics["hp_search_best_eval_target_accuracy"])
    assert metrics["eval_target_accuracy"] == pytest.approx(metrics["hp_search_best_eval_target_accuracy"])
    assert metrics["eval_target_loss"] == pytest.approx(_last(best["log_history"], "eval_target_loss"), rel=1e-4)
    assert "target_test_accuracy" in metrics and "test_accuracy" in metrics  # the test splits: the final model's
    domain_args = parsed[3]
    assert domain_args.target_dataset == "bundled:movie_sentiment"
    assert domain_args.domain_loss_weight == pytest.approx(best["values"]["domain_loss_weight"])
    again = recipe.main(*parsed)  # best_config.yaml reruns the best trial with the recipe
    assert again["eval_target_loss"] == pytest.approx(_last(best["log_history"], "eval_target_loss"), rel=1e-4)
    assert again["eval_target_accuracy"] == pytest.approx(metrics["hp_search_best_eval_target_accuracy"])


def test_domain_adaptation_continues_an_interrupted_search(tmp_path, tiny_bert_dir, monkeypatch):
    out = tmp_path / "dann"
    metrics, _ = _killed_after_one_trial_then_rerun("domain_adaptation", _domain_flags(tiny_bert_dir, out, tmp_path),
                                                    out, monkeypatch)
    assert metrics["hp_search_trials"] == 2 and (out / "model.safetensors").is_file()


@pytest.mark.parametrize("target", ["text_file", "other_labels", "source_metric"])
def test_domain_adaptation_refuses_a_search_it_cannot_score_on_target_labels(target, tmp_path, tiny_bert_dir):
    texts = tmp_path / "reviews.txt"
    texts.write_text("\n".join(f"a review of film number {i}" for i in range(40)), encoding="utf-8")
    given = {"text_file": ("--target_text_file", str(texts)),
             "other_labels": ("--target_dataset", "bundled:trec6"),
             "source_metric": ("--target_dataset", "bundled:movie_sentiment")}[target]
    extra = ("--metric_for_best_model", "accuracy") if target == "source_metric" else ()
    out = tmp_path / "x"
    with pytest.raises(HpSearchError, match=r"^--hp_search optuna is not available in the domain_adaptation recipe: "
                                            r".*Fix: .*") as err:
        _run("domain_adaptation", _domain_flags(tiny_bert_dir, out, tmp_path, *extra, target=given))
    message = str(err.value)
    assert "\n" not in message and not out.exists()
    if target == "source_metric":
        assert "metric_for_best_model='accuracy' scores the source's validation split" in message
        assert "Fix: name a metric of the target's validation split, e.g. --metric_for_best_model target_accuracy" \
            in message
    else:
        assert "has no labelled validation split to score trials on" in message
        assert message.endswith("Fix: give a --target_dataset with a labelled validation split whose labels the "
                                "source has (e.g. bundled:movie_sentiment), or drop --hp_search")


def test_a_domain_space_refuses_options_that_pick_the_shared_rows(tmp_path):
    from tlnlp.config import TrainingArgs
    from tlnlp.domain import SEARCH_RANGES, SEARCHABLE, DomainArgs
    from tlnlp.methods import MethodArgs
    from tlnlp.search import RecipeOptions, load_space

    options = RecipeOptions(DomainArgs(target_dataset="bundled:movie_sentiment"), SEARCHABLE, SEARCH_RANGES)
    space = load_space(None, TrainingArgs, MethodArgs(), options)  # built in: the method's, plus λ_max
    assert "domain_loss_weight" in space.names and "learning_rate" in space.names
    path = tmp_path / "space.yaml"
    path.write_text("target_max_samples: {type: int, low: 8, high: 64}\n", encoding="utf-8")
    with pytest.raises(HpSearchError, match=r"target_max_samples: this option of the recipe is fixed for a search "
                                            r".*Fix: set it as a flag"):
        load_space(str(path), TrainingArgs, MethodArgs(), options)
    assert "domain_loss_weight" not in load_space(None, TrainingArgs, MethodArgs()).names  # other recipes: unchanged
