"""A tiny digits classifier whose penultimate layer gives the features of the digits metric.

The classifier is trained by the project on the digits *train* split (seeded, seconds on a
CPU) and stored in the zoo (``zoo/checkpoints/digits/digits-classifier.safetensors``). Its 64-d feature
layer plays the role that Inception's pool features play in FID: the Frechet distance
between Gaussians fitted to these features (:mod:`ucgm_lab.metrics.digits`) is a teaching
metric for 8x8 digits, not FID.

Layout: ``conv3x3(1->16) SiLU conv3x3(16->32) SiLU avgpool2 conv3x3(32->64) SiLU avgpool2``
(8x8 -> 2x2) ``-> flatten(256) -> linear(256->64) SiLU`` (features) ``-> linear(64->10)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import load_image_data
from ..training.checkpoint import CheckpointError, read_zoo_file

__all__ = [
    "CLASSIFIER_DIR",
    "CLASSIFIER_NAME",
    "ClassifierRun",
    "DigitsClassifier",
    "classifier_accuracy",
    "load_classifier",
    "train_digits_classifier",
]

CLASSIFIER_NAME = "digits-classifier"
"""The classifier's name in the zoo (its checkpoint is ``<name>.safetensors``)."""
CLASSIFIER_DIR = Path(__file__).resolve().parents[1] / "zoo" / "checkpoints" / "digits"
"""The zoo folder of the digits models, where the classifier is stored (``ucgm_lab.zoo.DIGITS_DIR``;
named here as a path so that the metrics never import the zoo)."""


class DigitsClassifier(nn.Module):
    """A small CNN for 8x8 grey images in [-1, 1].

    Args:
        feature_dim: Size of the penultimate (feature) layer.
        num_classes: Number of classes.
        width: Channels of the first conv (doubled twice).
    """

    kind: ClassVar[str] = "digits_classifier"

    def __init__(self, feature_dim: int = 64, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.feature_dim, self.num_classes, self.width = feature_dim, num_classes, width
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 4 * width, 3, padding=1)
        self.fc = nn.Linear(4 * width * 4, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored with the weights)."""
        return {
            "kind": self.kind,
            "feature_dim": self.feature_dim,
            "num_classes": self.num_classes,
            "width": self.width,
        }

    def features(self, images: Tensor) -> Tensor:
        """Penultimate-layer features.

        Args:
            images: Shape (B, 1, 8, 8), pixels in [-1, 1].

        Returns:
            Shape (B, feature_dim).
        """
        if images.ndim != 4 or tuple(images.shape[1:]) != (1, 8, 8):
            raise ValueError(
                f"DigitsClassifier expects images of shape (B, 1, 8, 8), got {tuple(images.shape)}."
            )
        h = F.silu(self.conv1(images))
        h = F.avg_pool2d(F.silu(self.conv2(h)), 2)
        h = F.avg_pool2d(F.silu(self.conv3(h)), 2)
        return F.silu(self.fc(h.flatten(1)))

    def forward(self, images: Tensor) -> Tensor:
        """Class logits, shape (B, num_classes), of images (B, 1, 8, 8)."""
        return self.head(self.features(images))


@dataclass
class ClassifierRun:
    """The outcome of :func:`train_digits_classifier`.

    Attributes:
        model: The trained classifier (eval mode, no gradients).
        test_accuracy: Accuracy on the digits test split.
        seconds: Training wall time.
        settings: The training settings (stored in the checkpoint metadata).
    """

    model: DigitsClassifier
    test_accuracy: float
    seconds: float
    settings: dict[str, Any]


def _shift(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random translations by -1, 0 or +1 pixel in each direction (background -1).

    Args:
        images: Shape (B, 1, H, W).
        generator: Source of the offsets.

    Returns:
        Shape (B, 1, H, W).
    """
    b, _, h, w = images.shape
    padded = F.pad(images[:, 0], (1, 1, 1, 1), value=-1.0)  # (B, H + 2, W + 2)
    offsets = torch.randint(0, 3, (b, 2), generator=generator)
    rows = (offsets[:, :1] + torch.arange(h))[:, :, None]  # (B, H, 1)
    cols = (offsets[:, 1:] + torch.arange(w))[:, None, :]  # (B, 1, W)
    return padded[torch.arange(b)[:, None, None], rows, cols][:, None]


@torch.no_grad()
def classifier_accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Fraction of ``images`` (N, 1, 8, 8) that ``model`` classifies as ``labels`` (N,)."""
    was_training = model.training
    model.eval()
    acc = float((model(images).argmax(1) == labels).float().mean())
    model.train(was_training)
    return acc


def train_digits_classifier(
    epochs: int = 80, batch_size: int = 64, lr: float = 5e-3, seed: int = 0, feature_dim: int = 64
) -> ClassifierRun:
    """Train :class:`DigitsClassifier` on the digits train split (Adam, cosine decay, shifts).

    Args:
        epochs: Passes over the 1438 training images.
        batch_size: Batch size.
        lr: Peak learning rate.
        seed: Seed of the initialisation, the batch order and the augmentation.
        feature_dim: Feature size.

    Returns:
        :class:`ClassifierRun` (test accuracy 0.99 with the defaults).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train, test = load_image_data("digits", "train"), load_image_data("digits", "test")
    model = DigitsClassifier(feature_dim=feature_dim)
    steps_per_epoch = len(train) // batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(train), generator=generator)
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            x = _shift(train.images[idx], generator)
            loss = F.cross_entropy(model(x), train.labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    seconds = time.perf_counter() - start
    model.requires_grad_(False).eval()
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "feature_dim": feature_dim,
    }
    return ClassifierRun(
        model, classifier_accuracy(model, test.images, test.labels), seconds, settings
    )


def load_classifier(directory: str | Path = CLASSIFIER_DIR) -> DigitsClassifier:
    """Load the digits classifier of the digits metric (eval mode, no gradients).

    Raises:
        CheckpointError: Missing (the message says how to build it) or corrupt checkpoint.
    """
    path, tensors, meta = read_zoo_file(
        directory, CLASSIFIER_NAME, f"python -m ucgm_lab.zoo build --only {CLASSIFIER_NAME}"
    )
    try:
        config = {k: v for k, v in meta["network"].items() if k != "kind"}
        model = DigitsClassifier(**config)
        model.load_state_dict(tensors)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: the metadata or weights do not describe the classifier ({exc})."
        ) from exc
    return model.requires_grad_(False).eval()
