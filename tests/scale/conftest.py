import pytest
import torch

from tests.scale.helpers import accelerate_launch, make_latent_folder, train_overrides


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: starts `accelerate launch` subprocesses (about 10-20 s each on 2 CPU cores); "
        "deselect with -m 'not slow'",
    )


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: tiny models on a shared CPU are much faster without OpenMP spinning."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def latents(tmp_path_factory):
    """32 synthetic 4x4x4 latents of 4 classes in 3 shards."""
    root = tmp_path_factory.mktemp("latents") / "tiny"
    make_latent_folder(root, n=32, shape=(4, 4, 4), num_classes=4, shard_size=12)
    return root


@pytest.fixture(scope="session")
def straight_run(tmp_path_factory, latents):
    """The tiny config: 4 steps on 2 CPU processes through accelerate launch, in one go."""
    run = tmp_path_factory.mktemp("runs") / "straight"
    result = accelerate_launch("train.py", train_overrides(latents, run))
    assert result.returncode == 0, result.stderr[-6000:]
    assert "Finished at step 4 on 2 processes" in result.stdout
    return run
