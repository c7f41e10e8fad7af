"""Data for tlnlp: load any source into canonical, validated, reproducible splits.

Sources: bundled corpora (``bundled:<name>``, offline), Hugging Face Hub datasets, and local csv, tsv, json,
jsonl or parquet files. Every split has the columns ``text``, ``label`` (class id, or list of class ids for
multi-label data) and, for pair tasks, ``text_pair``. Problems are reported as :class:`DataError` with the
split, row, column, value and the fix.

Example:
    >>> from tlnlp.config import DataArgs
    >>> from tlnlp.data import load_task_data
    >>> data = load_task_data(DataArgs(dataset_name="bundled:movie_sentiment"))
    >>> data.labels
    ['negative', 'positive']
"""

from tlnlp.data.bundled import CORPORA, CorpusPreset, describe_corpora
from tlnlp.data.loading import TaskData, data_fingerprint, load_task_data
from tlnlp.data.qa import QA_CORPORA, QAData, load_qa_data
from tlnlp.data.splits import sample_per_class, seeded_subset, stratified_split_indices
from tlnlp.data.text import TextData, load_text_data, task_texts
from tlnlp.data.tokenize import tokenize_classification
from tlnlp.data.validation import DataError

__all__ = [
    "CORPORA",
    "CorpusPreset",
    "DataError",
    "QAData",
    "QA_CORPORA",
    "TaskData",
    "TextData",
    "data_fingerprint",
    "describe_corpora",
    "load_qa_data",
    "load_task_data",
    "load_text_data",
    "sample_per_class",
    "seeded_subset",
    "stratified_split_indices",
    "task_texts",
    "tokenize_classification",
]
