"""scale.rehearse: the whole pipeline in one command (generated images -> tiny autoencoder ->
extraction -> training -> resume -> sampling -> FID), on 2 CPU processes. Runs in CI."""

import pytest

from scale import rehearse
from scale.fid import ReferenceStats


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rehearsal_runs_the_pipeline_and_prints_a_summary(tmp_path, capsys):
    work = tmp_path / "rehearsal"
    assert rehearse.main(["--workdir", str(work), "--steps", "8", "--num-samples", "64"]) == 0
    out = capsys.readouterr().out
    summary = out[out.index("scale/ rehearsal on 2 CPU processes") :]
    for stage in ("images", "autoencoder", "extract", "train", "resume", "reference", "sample"):
        assert f"\n  {stage} " in summary
    assert "resumed at step 4" in summary and "8x8 pixel features, not InceptionV3" in summary
    assert len(summary.splitlines()) <= 30  # one screen
    run = work / "run"
    for name in ("checkpoints/last.pt", "ema.safetensors", "sync_check.json", "eval/results.json"):
        assert (run / name).is_file(), name
    assert len(list((work / "latents").glob("shard-*.safetensors"))) == 4
    # checkpoints every 2 steps over both launches; keep_last 2 numbered ones beside last.pt
    numbered = sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))
    assert numbered == ["step_000000006.pt", "step_000000008.pt"]
    assert {p.name for p in (work / "logs").iterdir()} == {
        "extract.log",
        "train.log",
        "resume.log",
        "sample.log",
    }
    # each log starts with the command that really starts 2 CPU processes (not --cpu: one)
    first = (work / "logs" / "train.log").read_text().splitlines()[0]
    assert first.startswith(
        "$ ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 -m scale.train"
    )
    # the reference statistics are the decoded latents' (64 images and their flips)
    assert ReferenceStats.load(work / "reference_stats.npz").mu.shape == (192,)


def test_rehearsal_overwrites_nothing_and_checks_its_settings(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert rehearse.main(["--workdir", str(tmp_path)]) == 2
    assert "overwrites nothing" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert rehearse.main(["--workdir", str(tmp_path / "new"), "--processes", "0"]) == 2
    assert "processes must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_a_failed_stage_names_itself_and_its_log(tmp_path, monkeypatch):
    import subprocess

    def fails(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "train.py: error: broken thing\n")

    monkeypatch.setattr("scale.launch.launch_on_cpu", fails)
    with pytest.raises(
        rehearse.RehearsalError, match=r"stage 'extract'.*broken thing.*extract\.log"
    ):
        rehearse.rehearse(tmp_path / "w")


def test_a_stage_past_its_timeout_says_so(tmp_path, monkeypatch):
    import subprocess

    def hangs(*args, **kwargs):
        raise subprocess.TimeoutExpired(args, 1)

    monkeypatch.setattr("scale.launch.launch_on_cpu", hangs)
    with pytest.raises(rehearse.RehearsalError, match=r"stage 'extract'.*within 7 s \(--timeout\)"):
        rehearse.rehearse(tmp_path / "w", timeout=7)
