"""Judging a model: metrics (AUROC, AUPRO, F1), the evaluation of a model on a labelled dataset, and the
dataset generators it is judged on."""
