"""``dispo eval``: measure post-call analytics on labelled dialogues.

- :mod:`~dispo.evaluation.dataset` reads the evaluation JSONL files (extraction or summaries);
- :mod:`~dispo.evaluation.scoring` holds the scoring rules and the type-validity checks;
- :mod:`~dispo.evaluation.rouge` computes ROUGE-1/2/L F1 the way the ``rouge-score`` package does;
- :mod:`~dispo.evaluation.naive` is the baseline: one plain prompt for everything;
- :mod:`~dispo.evaluation.harness` runs a strategy over a dataset and times it;
- :mod:`~dispo.evaluation.report` turns the results into a table, a JSON report and Markdown.
"""

from dispo.evaluation.dataset import DatasetError, ExtractionRecord, SummaryRecord, load_dataset

__all__ = ["DatasetError", "ExtractionRecord", "SummaryRecord", "load_dataset"]
