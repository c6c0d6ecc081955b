"""Batch inference: score a whole data set with a model offline (``python -m strato.batch.worker``)."""
