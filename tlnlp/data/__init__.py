"""Data sources for tlnlp: readers, bundled corpora, validation and reproducible splits, for every task.

Sources: bundled corpora (``bundled:<name>``, offline), Hugging Face Hub datasets, and local csv, tsv, json,
jsonl or parquet files. Problems are reported as :class:`DataError` with the split, row, column, value and the
fix. What one task makes of them (classification's ``text``/``label`` columns, question answering's SQuAD rows)
lives in the task's folder: load a task's data with :func:`tlnlp.tasks.load_task_data`.

Example:
    >>> from tlnlp.config import DataArgs
    >>> from tlnlp.tasks import load_task_data
    >>> data = load_task_data(DataArgs(dataset_name="bundled:movie_sentiment"))
    >>> data.labels
    ['negative', 'positive']
"""

from tlnlp.data.bundled import CORPORA, QA_CORPORA, CorpusPreset, QACorpus, describe_corpora
from tlnlp.data.splits import sample_per_class, seeded_subset, stratified_split_indices
from tlnlp.data.text import TextData, load_text_data
from tlnlp.data.validation import DataError

__all__ = [
    "CORPORA",
    "CorpusPreset",
    "DataError",
    "QACorpus",
    "QA_CORPORA",
    "TextData",
    "describe_corpora",
    "load_text_data",
    "sample_per_class",
    "seeded_subset",
    "stratified_split_indices",
]
