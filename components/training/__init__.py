"""Training: the model-agnostic loop driven by phases (`loop`), the Ray Train adapter (`ray_train`), the local
Ray session (`ray_session`) and the train stage's job (`job.run_training`: resolve a model's config, open its
MLflow run, train it on Ray). Package files hold names, not orchestration: import from the submodules."""
