"""Tuning jobs: a search over hyperparameters where every trial is a normal training job, driven by
Optuna's ask/tell API with the study kept in Strato's own database."""
