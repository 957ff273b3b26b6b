"""scale/train.py: two CPU processes through accelerate's real distributed engine, exact resume."""

import json
import math
import shutil

import pytest
import torch
import yaml

from scale import train as train_script
from scale.config import ConfigError, load_config
from tests.scale.helpers import TINY_CONFIG, accelerate_launch, train_overrides
from ucgm_lab.training import load_checkpoint, load_weights
from ucgm_lab.training.latents import LatentShardError, shard_name

pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_two_processes_see_the_same_loss_and_keep_identical_parameters(straight_run):
    report = json.loads((straight_run / "sync_check.json").read_text())
    assert report["num_processes"] == 2 and report["step"] == 4 and report["in_sync"]
    rank0, rank1 = report["ranks"]
    assert len(rank0["losses"]) == 4 and all(math.isfinite(v) for v in rank0["losses"])
    assert rank0["losses"] == rank1["losses"]  # the all-reduced loss, bit for bit
    assert rank0["params_sha256"] == rank1["params_sha256"]
    assert rank0["ema_sha256"] == rank1["ema_sha256"]

    state = load_checkpoint(straight_run / "checkpoints" / "last.pt")
    assert state["num_processes"] == 2 and state["step"] == 4
    data_states = [r["data"] for r in state["ranks"]]
    assert [(d["epoch"], d["position"]) for d in data_states] == [(0, 4), (0, 4)]
    assert "ema_teacher" in state["objective"]  # zeta > 0: the objective's teacher is saved
    # The two ranks drew different training times (per-rank generators), as they should.
    assert not torch.equal(state["ranks"][0]["generator"], state["ranks"][1]["generator"])


@pytest.mark.slow
def test_run_folder_holds_config_logs_grid_and_weights(straight_run, latents):
    saved = load_config(straight_run / "config.yaml")
    expected = load_config(
        TINY_CONFIG, [f"data.path={latents}", f"training.output_dir={straight_run}"]
    )
    assert saved == expected
    assert (straight_run / "samples" / "step_0000004.png").is_file()
    assert (straight_run / "latents" / "index.json").is_file()
    tensors, meta = load_weights(straight_run / "ema.safetensors")
    assert meta["step"] == 4 and meta["model_config"]["kind"] == "tit"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((straight_run / "logs").rglob("events.out.tfevents.*"))
    tags = set()
    for path in events:
        acc = EventAccumulator(str(path))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"]) | set(acc.Tags()["images"])
    assert {"loss", "images_per_second", "host_max_rss_gib", "samples"} <= tags


@pytest.mark.slow
def test_resume_is_exact(straight_run, latents, tmp_path):
    """2 steps, stop, resume, 2 steps == 4 steps straight (parameters, EMA, teacher, data)."""
    run = tmp_path / "resumed"
    first = accelerate_launch("train.py", train_overrides(latents, run, "training.steps=2"))
    assert first.returncode == 0, first.stderr[-6000:]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    second = accelerate_launch("train.py", train_overrides(latents, run))
    assert second.returncode == 0, second.stderr[-6000:]
    assert "Resumed from" in second.stdout

    a = load_checkpoint(straight_run / "checkpoints" / "last.pt")
    b = load_checkpoint(run / "checkpoints" / "last.pt")
    assert b["step"] == 4
    assert b["losses"] == pytest.approx(a["losses"], rel=1e-6, abs=1e-7)
    for name in a["model"]:
        torch.testing.assert_close(b["model"][name], a["model"][name], rtol=1e-6, atol=1e-7)
    for name in a["ema"]["model"]:
        torch.testing.assert_close(
            b["ema"]["model"][name], a["ema"]["model"][name], rtol=1e-6, atol=1e-7
        )
    teacher_a = a["objective"]["ema_teacher"]
    teacher_b = b["objective"]["ema_teacher"]
    assert teacher_b["num_updates"] == teacher_a["num_updates"] == 4
    for name in teacher_a["model"]:
        torch.testing.assert_close(
            teacher_b["model"][name], teacher_a["model"][name], rtol=1e-6, atol=1e-7
        )
    assert [r["data"] for r in b["ranks"]] == [r["data"] for r in a["ranks"]]
    for key, state_a in a["optimizer"]["state"].items():
        for name, value in state_a.items():
            torch.testing.assert_close(
                b["optimizer"]["state"][key][name], value, rtol=1e-6, atol=1e-9
            )


@pytest.mark.slow
def test_resume_refuses_changed_settings_and_never_overwrites(straight_run, latents, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(straight_run, run)
    before = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match=r"differs in \['objective.enhancement_ratio'\]"):
        train_script.main(
            [*train_overrides(latents, run, "objective.enhancement_ratio=0.3"), "--debug"]
        )
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        train_script.main([*train_overrides(latents, run) + ["--resume", "never"], "--debug"])
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    assert (
        yaml.safe_load((run / "config.yaml").read_text())["objective"]["enhancement_ratio"] == 0.5
    )


def test_corrupt_shard_stops_training_before_anything_is_written(latents, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(latents, broken)
    shard = broken / shard_name(1)
    shard.write_bytes(shard.read_bytes()[:50])
    run = tmp_path / "run"
    with pytest.raises(LatentShardError, match=shard_name(1)):
        train_script.main([*train_overrides(broken, run), "--debug"])
    assert not (run / "config.yaml").exists() and not (run / "checkpoints").exists()


@pytest.mark.slow
def test_few_step_training_starts_from_the_multi_step_checkpoint(straight_run, latents, tmp_path):
    """lambda = 1 with the frozen-teacher enhanced target, initialised from a finished run."""
    start = straight_run / "checkpoints" / "last.pt"
    run = tmp_path / "fewstep"
    few = [
        "objective.consistency_ratio=1.0",
        "objective.enhancement_ratio=2.0",
        "objective.time_distribution=[0.8, 1.0]",
        "objective.loss=pseudo_huber",
        "objective.huber_c=5.0",
        "optimizer.name=radam",
        "optimizer.betas=[0.9, 0.999]",
        "optimizer.grad_clip=0.1",
        f"training.init_from={start}",
        "training.init_weights=model",
        "training.steps=2",
        "training.sample_every=0",
        "sampling.steps=2",
        "sampling.rho=1.0",
        "sampling.schedule=uniform",
        "sampling.gap_data=0.3",
    ]
    assert train_script.main(train_overrides(latents, run, *few)) == 0
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    initial = load_checkpoint(start)["model"]
    teacher = state["objective"]["frozen_teacher"]
    for name, value in initial.items():
        torch.testing.assert_close(teacher[name], value)  # the frozen teacher = the start weights
    assert state["step"] == 2 and all(math.isfinite(v) for v in state["losses"])
    assert any(not torch.equal(state["model"][n], initial[n]) for n in initial)
