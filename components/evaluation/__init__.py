"""Evaluation: the feature network (`features`), sample metrics (`sample_metrics`), likelihood bounds
(`likelihood`), conditional, code and translation metrics, figures, the report, and `run.evaluate_model`,
which writes a model's metrics with their protocol. Package files hold names, not orchestration."""
