"""The shared training loop (accelerate), data sources and checkpoints."""

from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from .data import Batch, DataSource, TensorDataSource
from .trainer import Callback, NonFiniteLossError, Trainer, TrainerConfig, TrainResult

__all__ = [
    "Batch",
    "Callback",
    "CheckpointError",
    "DataSource",
    "NonFiniteLossError",
    "TensorDataSource",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "save_weights",
]
