"""The shared training loop (accelerate), data sources and checkpoints."""

from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from .data import Batch, DataSource, TensorDataSource
from .run_folder import RunFolderError
from .trainer import Callback, NonFiniteLossError, Trainer, TrainerConfig, TrainResult

__all__ = [
    "Batch",
    "Callback",
    "CheckpointError",
    "DataSource",
    "NonFiniteLossError",
    "RunFolderError",
    "TensorDataSource",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "save_weights",
]
