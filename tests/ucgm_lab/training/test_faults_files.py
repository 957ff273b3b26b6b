"""Faults of files: unsafe or mismatched checkpoints, a full disk, unwritable folders, the zoo's
checksums and metadata, CIFAR batch files. Each test names the case of the trust issue."""

import json
import os
import pickle
import stat

import numpy as np
import pytest
import torch

from toy_data import sample_2d
from ucgm_lab.networks import MLP2D
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import CheckpointError, TensorDataSource, Trainer, TrainerConfig
from ucgm_lab.training.checkpoint import (
    MANIFEST_NAME,
    atomic_write,
    load_checkpoint,
    load_weights,
    save_weights,
    seal_weights,
    update_manifest,
)
from ucgm_lab.training.checkpoint.weights import _content_digest
from ucgm_lab.training.trainer import ResumeMismatchError


class _RunsCommand:
    """A pickle payload that would create ``marker`` if it were ever unpickled normally."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _trainer(folder, lam=0.0, hidden=16, steps=4, **cfg):
    torch.manual_seed(0)
    data = sample_2d("moons", 256, seed=0)
    model = MLP2D(hidden=hidden, depth=2)
    cfg = {"steps": steps, "lr": 1e-3, "progress": False, "checkpoint_dir": str(folder), **cfg}
    return Trainer(
        model,
        UCGMObjective("linear", lam),
        TensorDataSource(data.points, batch_size=32, seed=1),
        TrainerConfig(**cfg),
    )


def test_malicious_checkpoint_runs_nothing(tmp_path):
    """Security: Trainer.resume and load_checkpoint refuse a pickle that calls os.system."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "step": _RunsCommand(marker)}, evil)
    trainer = _trainer(tmp_path / "ck")
    before = [p.detach().clone() for p in trainer.unwrapped_model.parameters()]
    with pytest.raises(CheckpointError, match=r"Refused to load .*system.*nothing in it was run"):
        trainer.resume(evil)
    with pytest.raises(CheckpointError, match="Refused"):
        load_checkpoint(evil)
    assert not marker.exists()
    # a plain pickle (not a torch zip file) with the same payload is refused too
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"format_version": 1, "x": _RunsCommand(marker)}, protocol=2))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not marker.exists()
    for a, b in zip(before, trainer.unwrapped_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_refuses_unsafe_values_on_save(tmp_path):
    from ucgm_lab.training.checkpoint import save_checkpoint

    with pytest.raises(TypeError, match="only tensors, numbers, strings"):
        save_checkpoint(tmp_path / "x.pt", {"thing": object()})
    assert not (tmp_path / "x.pt").exists()


def test_resume_refuses_a_changed_objective_but_start_from_works(tmp_path):
    """Silent: a lambda = 0 checkpoint resumed into a lambda = 1 run continued its step count."""
    first = _trainer(tmp_path / "a", lam=0.0)
    first.fit()
    ckpt = tmp_path / "a" / "last.pt"
    second = _trainer(tmp_path / "b", lam=1.0)
    with pytest.raises(
        ResumeMismatchError, match=r"consistency_ratio: checkpoint 0\.0, this run 1\.0.*start_from"
    ):
        second.resume(ckpt)
    assert second.step == 0
    second.start_from(ckpt)
    assert second.step == 0
    for a, b in zip(first.ema_model.parameters(), second.unwrapped_model.parameters(), strict=True):
        assert torch.equal(a, b)
    second.fit(steps=1)
    assert second.step == 1


def test_failed_resume_leaves_the_model_untouched(tmp_path):
    """Silent: a resume into a model of another shape overwrote the tensors whose shapes matched."""
    _trainer(tmp_path / "a", hidden=16).fit()
    other = _trainer(tmp_path / "b", hidden=24)
    before = {k: v.clone() for k, v in other.unwrapped_model.state_dict().items()}
    ema_before = {k: v.clone() for k, v in other.ema_model.state_dict().items()}
    with pytest.raises(ResumeMismatchError, match="another architecture.*nothing was loaded"):
        other.resume(tmp_path / "a" / "last.pt")
    for k, v in other.unwrapped_model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for k, v in other.ema_model.state_dict().items():
        assert torch.equal(v, ema_before[k]), k
    assert other.step == 0


def test_numbered_checkpoints_keep_last(tmp_path):
    """Lost work: only last.pt was kept."""
    trainer = _trainer(tmp_path, steps=10, checkpoint_every=2, keep_last=3)
    trainer.fit()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["last.pt", "step_000000006.pt", "step_000000008.pt", "step_000000010.pt"]
    assert load_checkpoint(tmp_path / "step_000000006.pt")["step"] == 6
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 10
    with pytest.raises(ValueError, match="keep_last must be an integer >= 0"):
        TrainerConfig(keep_last=-1)


def test_checkpoint_is_written_before_the_callbacks(tmp_path):
    """Lost work: a failing callback (sample grid) ran before its step's checkpoint."""

    def broken(trainer, step, logs):
        raise RuntimeError("grid failed")

    trainer = _trainer(tmp_path, steps=4, checkpoint_every=2)
    trainer.callbacks = [(2, broken)]
    with pytest.raises(RuntimeError, match="grid failed"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2


def test_unwritable_checkpoint_folder_is_found_before_training(tmp_path):
    """Lost work: a read-only or is-a-file checkpoint folder was found at the first save."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(CheckpointError, match="is a file, not a folder"):
        _trainer(a_file)
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        try:
            with pytest.raises(CheckpointError, match="not writable"):
                _trainer(ro / "ck")
        finally:
            ro.chmod(stat.S_IRWXU)


def test_full_disk_says_so_and_keeps_the_previous_file(tmp_path):
    """Obscure: a full disk during a save said "unexpected pos 80896 vs 80784"."""
    target = tmp_path / "last.pt"
    target.write_bytes(b"good")

    def full(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos 80896 vs 80784")

    with pytest.raises(CheckpointError, match=r"last\.pt is unchanged.*disk full .*MiB free"):
        atomic_write(target, full)
    assert target.read_bytes() == b"good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


# ---------------------------------------------------------------------- zoo files
@pytest.fixture
def zoo_copy(tmp_path):
    from ucgm_lab.zoo import ZOO_DIR

    name = "checkerboard-linear-lam1"
    (tmp_path / f"{name}.safetensors").write_bytes((ZOO_DIR / f"{name}.safetensors").read_bytes())
    manifest = json.loads((ZOO_DIR / MANIFEST_NAME).read_text())
    (tmp_path / MANIFEST_NAME).write_text(
        json.dumps({f"{name}.safetensors": manifest[f"{name}.safetensors"]})
    )
    return tmp_path, name


def test_shipped_zoo_files_match_their_checksums():
    from ucgm_lab.training.checkpoint import file_sha256
    from ucgm_lab.zoo import DIGITS_DIR, ZOO_DIR

    for folder in (ZOO_DIR, DIGITS_DIR):
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        files = sorted(p.name for p in folder.glob("*.safetensors"))
        assert sorted(manifest) == files
        for name in files:
            assert file_sha256(folder / name) == manifest[name]


def test_zoo_flipped_byte_is_refused(zoo_copy):
    """Silent: flipped bytes in a zoo checkpoint's weights loaded without a word."""
    from ucgm_lab.zoo import load

    folder, name = zoo_copy
    assert load(name, folder).name == name
    path = folder / f"{name}.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load(name, folder)

    # Files written by save_weights carry a digest of their own: no manifest needed.
    own = folder / "own.safetensors"
    (folder / MANIFEST_NAME).unlink()
    model = MLP2D(hidden=8, depth=1)
    save_weights(own, model.state_dict(), {"note": "x"})
    data = bytearray(own.read_bytes())
    data[-3] ^= 0x01
    own.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        load_weights(own)


def _rewrite_metadata(path, edit):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    with safe_open(path, framework="pt") as fh:
        header = dict(fh.metadata())
    header["ucgm_lab"] = edit(header["ucgm_lab"])
    save_file(tensors, path, metadata=header)


def test_zoo_edited_transport_is_refused(zoo_copy):
    """Silent: an edited `transport` in the metadata loaded as that transport."""
    from ucgm_lab.zoo import load

    folder, name = zoo_copy
    path = folder / f"{name}.safetensors"
    _rewrite_metadata(
        path, lambda raw: raw.replace('"transport": "linear"', '"transport": "trigflow"')
    )
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load(name, folder)


def test_zoo_metadata_not_json_or_incomplete(tmp_path):
    """Obscure: zoo metadata that is not JSON, or lacks "sampling"."""
    from safetensors.torch import save_file

    from ucgm_lab.zoo import load

    name = "checkerboard-linear-lam1"
    path = tmp_path / f"{name}.safetensors"
    model = MLP2D(hidden=8, depth=1)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    digest = _content_digest(tensors, "{not json")  # a sealed file with broken metadata
    save_file(tensors, path, metadata={"ucgm_lab": "{not json", "ucgm_lab_sha256": digest})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(name, tmp_path)
    meta = {
        "network": model.config,
        "recipe": {"transport": "linear", "consistency_ratio": 1.0, "dataset": "moons"},
    }
    save_weights(path, model.state_dict(), meta)
    with pytest.raises(CheckpointError, match="'sampling' must be a JSON object but is missing"):
        load(name, tmp_path)
    save_weights(path, model.state_dict(), {**meta, "sampling": {"steps": 2}})
    assert load(name, tmp_path).sampling == {"steps": 2}
    update_manifest(path)
    assert load(name, tmp_path).sampling == {"steps": 2}
    other = tmp_path / "not-listed.safetensors"
    save_weights(other, model.state_dict(), meta)
    with pytest.raises(CheckpointError, match="not listed"):
        load_weights(other)


def test_image_zoo_refuses_a_modified_file(tmp_path):
    from ucgm_lab.zoo import DIGITS_DIR as IMAGE_ZOO_DIR
    from ucgm_lab.zoo import load as load_image_model

    name = "digits-linear-lam1"
    for f in (f"{name}.safetensors", MANIFEST_NAME):
        (tmp_path / f).write_bytes((IMAGE_ZOO_DIR / f).read_bytes())
    assert load_image_model(name, tmp_path).name == name
    _rewrite_metadata(
        tmp_path / f"{name}.safetensors",
        lambda raw: raw.replace('"transport": "linear"', '"transport": "edm"'),
    )
    with pytest.raises(CheckpointError, match="checksum"):
        load_image_model(name, tmp_path)


def test_shipped_zoo_files_carry_their_own_digest():
    """Tampering (issue 24): the shipped files had no digest, only the folder's manifest."""
    from safetensors import safe_open

    from ucgm_lab.zoo import DIGITS_DIR, ZOO_DIR

    for folder in (ZOO_DIR, DIGITS_DIR):
        for path in sorted(folder.glob("*.safetensors")):
            with safe_open(path, framework="pt") as fh:
                assert "ucgm_lab_sha256" in (fh.metadata() or {}), path.name
            load_weights(path)


def _drop_digest(path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    with safe_open(path, framework="pt") as fh:
        header = dict(fh.metadata())
    header.pop("ucgm_lab_sha256", None)
    save_file(tensors, path, metadata=header)


@pytest.mark.parametrize("drop_digest", [False, True])
def test_zoo_metadata_edit_without_a_manifest_is_refused(zoo_copy, drop_digest):
    """Tampering (issue 24): without checksums.json, sampling.steps 32 -> 1 loaded as 1 (here:
    the stored time points edited)."""
    from ucgm_lab.zoo import load

    folder, name = zoo_copy
    (folder / MANIFEST_NAME).unlink()
    path = folder / f"{name}.safetensors"
    points = load(name, folder).sampling["time_points"]

    def edit(raw):
        meta = json.loads(raw)
        meta["sampling"]["time_points"] = [0.5]
        return json.dumps(meta, sort_keys=True)

    _rewrite_metadata(path, edit)
    if drop_digest:
        _drop_digest(path)
    match = "allow_unverified=True" if drop_digest else "fails its checksum"
    with pytest.raises(CheckpointError, match=match):
        load(name, folder)
    if drop_digest:  # the explicit opt-out loads what the file says now
        edited = load(name, folder, allow_unverified=True).sampling["time_points"]
        assert edited == [0.5] != points


def test_load_weights_refuses_flipped_bytes_once_the_digest_is_removed(tmp_path):
    """Tampering (issue 24): flipped data bytes loaded once `ucgm_lab_sha256` was removed."""
    path = tmp_path / "w.safetensors"
    model = MLP2D(hidden=8, depth=1)
    save_weights(path, model.state_dict(), {"note": "x"})
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    _drop_digest(path)
    with pytest.raises(CheckpointError, match=r"carries no content digest .*allow_unverified=True"):
        load_weights(path)
    tensors, _ = load_weights(path, allow_unverified=True)  # the caller's explicit choice
    assert not all(torch.equal(tensors[k], v) for k, v in model.state_dict().items())
    seal_weights(path)  # vouch for the file as it is now: verified from then on
    assert load_weights(path)[1] == {"format_version": 1, "note": "x"}


def test_seal_weights_keeps_tensors_and_metadata_and_the_manifest(tmp_path):
    path = tmp_path / "w.safetensors"
    model = MLP2D(hidden=8, depth=1)
    save_weights(path, model.state_dict(), {"note": "x"})
    _drop_digest(path)
    update_manifest(path)
    before = load_weights(path, allow_unverified=True)
    seal_weights(path)
    after = load_weights(path)  # the manifest was updated with the new bytes
    assert before[1] == after[1] and before[0].keys() == after[0].keys()
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        seal_weights(path)


# ---------------------------------------------------------------------- CIFAR batch files
def test_empty_cifar_batch_is_read(tmp_path):
    """Obscure: an empty but valid CIFAR batch file was refused as a "forbidden global"."""
    from toy_data.cifar import _read_batch

    path = tmp_path / "data_batch_1"
    batch = {b"data": np.zeros((0, 3072), dtype=np.uint8), b"labels": []}
    path.write_bytes(pickle.dumps(batch, protocol=2))
    data, labels = _read_batch(path)
    assert data.shape == (0, 3072) and labels.shape == (0,)
