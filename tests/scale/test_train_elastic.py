"""scale/train.py with gradient accumulation on 2 processes, and resumed on 1 (elastic)."""

import json

import pytest

from scale import train as train_script
from tests.scale.helpers import accelerate_launch, train_overrides
from ucgm_lab.training import load_checkpoint

pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_accumulating_two_process_run_resumes_on_one_process(latents, tmp_path, capsys):
    run = tmp_path / "acc"
    first = accelerate_launch(
        "train.py",
        train_overrides(latents, run, "training.steps=2", "training.gradient_accumulation_steps=2"),
    )
    assert first.returncode == 0, first.stderr[-6000:]
    report = json.loads((run / "sync_check.json").read_text())
    assert report["in_sync"] and report["num_processes"] == 2  # DDP no_sync + one all-reduce
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 2 and state["gradient_accumulation_steps"] == 2
    assert state["objective"]["ema_teacher"]["num_updates"] == 2  # once per optimizer step
    assert state["ema"]["num_updates"] == 2

    # the same run continued on one process: the global data position carries over
    overrides = train_overrides(latents, run, "training.gradient_accumulation_steps=2")
    assert train_script.main(overrides) == 0
    assert "Elastic resume" in capsys.readouterr().out
    resumed = load_checkpoint(run / "checkpoints" / "last.pt")
    assert resumed["step"] == 4 and resumed["num_processes"] == 1
    assert [r["data"]["position"] for r in resumed["ranks"]] == [4]
    assert resumed["objective"]["ema_teacher"]["num_updates"] == 4

    # another accumulation is refused before anything runs
    from scale.config import ConfigError

    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        train_script.main([*train_overrides(latents, run, "training.steps=6"), "--debug"])
