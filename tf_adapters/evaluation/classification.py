"""Accuracy, macro precision / recall / F1 and the confusion matrix."""

import numpy as np


def classification_metrics(y_true, y_pred, num_classes):
    """Metrics of integer predictions against integer labels.

    Precision, recall and F1 are macro averages over classes (a class never
    predicted has precision 0), as `sklearn` computes them with
    `zero_division=0`.

    Example:
    >>> from tf_adapters.evaluation.classification import (
    ...     classification_metrics)
    >>> m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], 2)
    >>> m["accuracy"], round(m["f1"], 4)
    (0.75, 0.7333)
    """
    y_true = np.asarray(y_true, "int64")
    y_pred = np.asarray(y_pred, "int64")
    confusion = np.zeros((num_classes, num_classes), "int64")
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype("float64")
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(
        tp, predicted, out=np.zeros_like(tp), where=predicted > 0
    )
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(
        2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0
    )
    return {
        "accuracy": float(tp.sum() / max(len(y_true), 1)),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "confusion_matrix": confusion.tolist(),
        "count": int(len(y_true)),
    }
