"""Tuning: the tune stage (`sweep.tune_model`) and the Ray Tune runner (`ray_tune`). Search spaces are validated
in components.config. Tuning feeds training (tuned/<model>.json, read by `training.job.model_config`), never
the reverse."""
