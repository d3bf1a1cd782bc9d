"""Detection quality measurement (`veil eval`): datasets, metrics and the evaluation loop as plain functions."""

from worker.evaluation.dataset import CLASSES, Dataset, DatasetError, LabelledImage, load_coco
from worker.evaluation.evaluate import EvalReport, Predictor, evaluate
from worker.evaluation.metrics import SIZE_BUCKETS, ClassMetrics, ClassSample, class_metrics, metrics_by_size

__all__ = [
    "CLASSES",
    "SIZE_BUCKETS",
    "ClassMetrics",
    "ClassSample",
    "Dataset",
    "DatasetError",
    "EvalReport",
    "LabelledImage",
    "Predictor",
    "class_metrics",
    "evaluate",
    "load_coco",
    "metrics_by_size",
]
