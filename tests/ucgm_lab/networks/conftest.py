from collections.abc import Callable

import pytest
import torch


def _perturb(model: torch.nn.Module, scale: float = 0.1, seed: int = 0) -> None:
    """Add Gaussian noise to every parameter (so zero-initialised layers become non-zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


@pytest.fixture
def perturb() -> Callable[..., None]:
    return _perturb
