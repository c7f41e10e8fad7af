"""Trained strategies of the ladder: the recipes' parser and defaults, any registered method, AdaLoRA's budget."""

import json

import pytest

from tests.unit.compare.conftest import ladder_args
from tlnlp.compare import CompareArgs, run_compare
from tlnlp.config import TLNLP_TRAINING_DEFAULTS, ConfigError, DataArgs, ModelArgs, parse_args


def test_cell_trainer_gets_the_recipes_training_defaults(tiny_bert_folder, sentiment_csv, tmp_path, monkeypatch,
                                                          built_trainers):
    # a tlnlp training default reaches the cell through the recipes' parser, not a copy typed into compare
    monkeypatch.setitem(TLNLP_TRAINING_DEFAULTS, "train_sampling_strategy", "sequential")
    run_compare(*ladder_args(tiny_bert_folder, tmp_path / "defaults", sentiment_csv, strategies=["full"],
                             budgets=["2"], batch_size=2, weight_decay=0.05, warmup_ratio=0.2,
                             learning_rates=["full=3e-4"]))
    args = built_trainers[0].args
    assert args.train_sampling_strategy == "sequential"
    assert args.average_tokens_across_devices is False
    # the compare settings of the cell
    assert args.per_device_train_batch_size == 2 and args.per_device_eval_batch_size == 32
    assert args.weight_decay == 0.05 and args.warmup_steps == 0.2 and args.learning_rate == 3e-4
    assert args.seed == 0 and args.data_seed == 0 and args.num_train_epochs == 2
    # a cell trains and scores; it neither evaluates during training, nor saves, nor reports
    assert args.eval_strategy == "no" and args.save_strategy == "no" and args.report_to == []


def test_trained_strategy_without_a_learning_rate_is_refused_when_parsed(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"'ia3'.*--learning_rates ia3=5e-5"):
        CompareArgs(output_dir=str(tmp_path), strategies=["full", "ia3"])
    flags = ["--dataset_name", "bundled:trec6", "--output_dir", str(tmp_path), "--strategies", "full", "ia3"]
    with pytest.raises(ConfigError):
        parse_args(ModelArgs, DataArgs, CompareArgs, args=flags)
    assert "--learning_rates ia3=5e-5" in capsys.readouterr().err
    found = CompareArgs(output_dir=str(tmp_path), strategies=["full", "ia3"], learning_rates=["ia3=2e-3"])
    assert found.learning_rate_map() == {**CompareArgs(output_dir=str(tmp_path)).learning_rate_map(), "ia3": 2e-3}


def test_a_method_registered_outside_tlnlp_is_a_strategy(tiny_bert_folder, sentiment_csv, tmp_path, monkeypatch):
    from tlnlp.methods import METHODS, Method

    class FreezeEmbeddings(Method):
        name = "test_freeze_embeddings"
        description = "the word embeddings stay frozen; every other weight and the new {head} train"

        def prepare(self, model, args):
            model.get_input_embeddings().requires_grad_(False)
            return model

    monkeypatch.setitem(METHODS._items, FreezeEmbeddings.name, FreezeEmbeddings())
    with pytest.raises(ValueError, match="--learning_rates test_freeze_embeddings="):
        CompareArgs(output_dir=str(tmp_path), strategies=["test_freeze_embeddings"])
    out = tmp_path / "plugin"
    result = run_compare(*ladder_args(tiny_bert_folder, out, sentiment_csv, budgets=["2"],
                                      strategies=["test_freeze_embeddings", "full"],
                                      learning_rates=["test_freeze_embeddings=1e-3"]))
    rows = {r["strategy"]: r for r in result.rows}
    frozen = 30522 * 32  # the tiny BERT's word embeddings
    assert rows["test_freeze_embeddings"]["trainable_parameters"] == rows["full"]["trainable_parameters"] - frozen
    assert rows["test_freeze_embeddings"]["n_train"] == 4
    legend = json.loads((out / "compare_table.json").read_text())["strategies"]
    assert legend["test_freeze_embeddings"].startswith("the word embeddings stay frozen")


def test_adalora_cell_reallocates_ranks_once_per_step(tiny_bert_folder, sentiment_csv, tmp_path, monkeypatch,
                                                      built_trainers):
    from peft.tuners.adalora import AdaLoraModel

    real = AdaLoraModel.update_and_allocate
    steps = []

    def counting(self, global_step):
        steps.append(global_step)
        return real(self, global_step)

    monkeypatch.setattr(AdaLoraModel, "update_and_allocate", counting)
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "adalora", sentiment_csv, strategies=["adalora"],
                                      budgets=["2"], learning_rates=["adalora=5e-3"]))
    assert result.cells_run == 1
    trainer = built_trainers[0]
    assert steps == list(range(1, trainer.state.max_steps + 1))  # the budget callback runs once per step
