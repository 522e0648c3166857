"""Datasets: the real-surfaces evaluation set generator and the synthetic-line samples."""
