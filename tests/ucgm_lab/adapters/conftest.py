import pytest
import torch


class SmoothNet(torch.nn.Module):
    """A small nonlinear network model(x, t[, y]) -> same shape as x, any time scale.

    ``time_scale`` divides the time input so that timesteps in [0, 1000) or sigmas in
    [0.002, 80] stay in a sensible range for tanh.
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 32,
        time_scale: float = 1.0,
        num_classes: int | None = None,
    ):
        super().__init__()
        self.time_scale = time_scale
        self.num_classes = num_classes
        self.null_class = num_classes
        self.l1 = torch.nn.Linear(dim + 1, hidden)
        self.emb = torch.nn.Embedding(num_classes + 1, hidden) if num_classes else None
        self.l2 = torch.nn.Linear(hidden, dim)

    def forward(self, x, t, y=None):
        t = torch.as_tensor(t, dtype=x.dtype)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        h = self.l1(torch.cat([x, (t[:, None] / self.time_scale).to(x.dtype)], dim=1))
        if self.emb is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.null_class, dtype=torch.long)
            h = h + self.emb(y)
        return self.l2(torch.tanh(h))


@pytest.fixture
def smooth_net():
    def make(**kwargs):
        return SmoothNet(**kwargs).double()

    return make
