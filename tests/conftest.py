import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


class TinyNet(torch.nn.Module):
    """A small nonlinear network following model(x, t, y=None) -> F, for tests."""

    def __init__(self, dim: int = 2, num_classes: int | None = None, hidden: int = 32):
        super().__init__()
        self.num_classes = num_classes
        self.null_class = num_classes
        self.inp = torch.nn.Linear(dim + 1, hidden)
        self.emb = torch.nn.Embedding(num_classes + 1, hidden) if num_classes else None
        self.out = torch.nn.Linear(hidden, dim)

    def forward(self, x, t, y=None):
        h = self.inp(torch.cat([x, t[:, None].to(x.dtype)], dim=1))
        if self.emb is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.null_class, dtype=torch.long, device=x.device)
            h = h + self.emb(y)
        return self.out(torch.tanh(h))


@pytest.fixture
def tiny_net():
    return TinyNet()
