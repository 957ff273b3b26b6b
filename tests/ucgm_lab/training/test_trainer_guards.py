"""The trainer refuses model-sharding accelerate modes and says when fp16 falls back to fp32."""

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig
from ucgm_lab.training.distributed import UnsupportedDistributedError, check_distributed_type

_ENV = ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_MEGATRON_LM")


@pytest.fixture(autouse=True)
def _no_launcher_flags(monkeypatch):
    for var in _ENV:
        monkeypatch.delenv(var, raising=False)
    # accelerate keeps one process-wide state; these tests make accelerators of several
    # precisions
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def _parts():
    x = sample_2d("checkerboard", 64, seed=0)
    return (
        MLP2D(hidden=16, depth=1),
        UCGMObjective("linear", 0.0),
        TensorDataSource(x.points, batch_size=16),
    )


@pytest.mark.parametrize("kind", [DistributedType.FSDP, DistributedType.DEEPSPEED, "MEGATRON_LM"])
def test_trainer_refuses_a_sharding_accelerator_before_writing_anything(kind, tmp_path):
    """A stand-in accelerator reporting a sharded mode: refused in one line, no folder made."""
    model, objective, data = _parts()
    acc = SimpleNamespace(gradient_accumulation_steps=1, distributed_type=kind)
    folder = tmp_path / "ckpt"
    cfg = TrainerConfig(steps=2, progress=False, cpu=True, checkpoint_dir=str(folder))
    with pytest.raises(UnsupportedDistributedError) as info:
        Trainer(model, objective, data, cfg, accelerator=acc)
    message = str(info.value)
    assert "\n" not in message and "the Trainer does not support" in message
    assert "data parallelism (accelerate launch --multi_gpu" in message
    assert not folder.exists()


def test_trainer_refuses_fsdp_from_the_launcher_before_making_an_accelerator(tmp_path, monkeypatch):
    """What `accelerate launch --use_fsdp` sets, seen before accelerate's own FSDP errors."""
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    model, objective, data = _parts()
    cfg = TrainerConfig(steps=2, progress=False, cpu=True, checkpoint_dir=str(tmp_path / "c"))
    with pytest.raises(UnsupportedDistributedError, match="configured for FSDP"):
        Trainer(model, objective, data, cfg)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("kind", [None, DistributedType.NO, DistributedType.MULTI_CPU, "MULTI_GPU"])
def test_data_parallel_modes_pass(kind):
    check_distributed_type(kind)


def test_fp16_on_the_cpu_warns_that_float32_runs():
    model, objective, data = _parts()
    cfg = TrainerConfig(steps=1, progress=False, cpu=True, mixed_precision="fp16")
    with pytest.warns(
        UserWarning, match=r"'fp16' is not available on the CPU: accelerate runs float32"
    ):
        trainer = Trainer(model, objective, data, cfg)
    assert trainer.accelerator.scaler is None  # what the warning says: no scaler, no autocast
    with trainer.accelerator.autocast():
        assert torch.nn.Linear(2, 2)(torch.randn(1, 2)).dtype == torch.float32


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_other_precisions_do_not_warn(precision):
    model, objective, data = _parts()
    cfg = TrainerConfig(steps=1, progress=False, cpu=True, mixed_precision=precision)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        Trainer(model, objective, data, cfg)


@pytest.mark.timeout(300)
def test_accelerate_launch_use_fsdp_on_two_cpu_processes_is_refused(tmp_path):
    """The real launcher: both ranks stop with the one-line refusal; nothing is written."""
    from scale.launch import launch_on_cpu
    from tests.scale.helpers import REPO

    worker = Path(__file__).with_name("plain_worker.py")
    out = tmp_path / "out"
    out.mkdir()
    done = launch_on_cpu(str(worker), [str(out)], 2, cwd=REPO, launcher_args=["--use_fsdp"])
    assert done.returncode != 0
    # Both ranks write to one stderr, so their lines can interleave mid-line (seen: one rank's
    # message glued to the end of the other's, and the exception's type apart from its
    # message): count the message in the whole text.
    refusal = "accelerate is configured for FSDP, which the Trainer does not support"
    refusals = done.stderr.count(refusal)
    # Both ranks refuse; whichever refuses first makes the launcher send SIGTERM to the other,
    # which may then die before it prints its own refusal (a race between the two processes).
    # So: at least one refusal, and every rank either refused or was stopped by the launcher.
    assert refusals >= 1, done.stderr[-3000:]
    assert refusals == 2 or "SIGTERM" in done.stderr, done.stderr[-3000:]
    assert "UnsupportedDistributedError" in done.stderr  # the type is written apart from it
    other_errors = [
        line
        for line in done.stderr.splitlines()
        if line.startswith(("ucgm_lab.", "RuntimeError", "ValueError", "TypeError"))
        and "UnsupportedDistributedError" not in line
    ]
    assert other_errors == [], other_errors
    assert list(out.iterdir()) == []


@pytest.mark.timeout(300)
def test_a_trainer_that_made_its_accelerator_ends_the_process_group_at_exit(tmp_path):
    """Two CPU ranks that end right after fit(): the group is destroyed before teardown.

    The worker's own exit hook (run after the Trainer's) sees whether the group was still there.
    Both ranks must also exit 0: such a script aborted ("terminate called without an active
    exception", exit code -6) in 6 of 57 launches before every collective waited for gloo to let
    go of its tensors (tests/ucgm_lab/training/test_collectives.py).
    """
    from scale.launch import launch_on_cpu
    from tests.scale.helpers import REPO

    worker = Path(__file__).with_name("exit_worker.py")
    done = launch_on_cpu(str(worker), [str(tmp_path)], 2, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = {p.name: p.read_text() for p in sorted(tmp_path.glob("exit_rank*"))}
    assert seen == {"exit_rank0": "destroyed", "exit_rank1": "destroyed"}, seen
