"""Utilities shared by every project: CLI, configs, data, training, evaluation, plots."""
