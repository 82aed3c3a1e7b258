"""Using trained adapters: evaluate and predict from saved adapters (predict.py); many adapters on one shared
frozen backbone in one batch (multi.py) and over HTTP (server.py)."""

from .multi import MultiAdapterModel
from .predict import evaluate_adapter, load_for_serving, predict_file, predict_records, read_records, resolve_adapter_dir

__all__ = ["MultiAdapterModel", "evaluate_adapter", "load_for_serving", "predict_file", "predict_records", "read_records", "resolve_adapter_dir"]
