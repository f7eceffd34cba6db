"""Hyperparameter sweeps on Optuna: search spaces over recipe paths, objectives, studies."""
