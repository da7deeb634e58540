"""Tracking: the only package that imports mlflow (runs, metrics, artifacts, logged models)."""

from components.errors import TrackingError
from components.tracking.mlflow_store import Tracker, own_run_store, tracking_uri

__all__ = ["Tracker", "TrackingError", "own_run_store", "tracking_uri"]
