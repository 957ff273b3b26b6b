import json

import numpy as np
import pytest
import torch
from PIL import Image

from scale import extract_latents
from scale.builders import encode_images, load_autoencoder
from scale.config import AutoencoderConfig
from scale.images import center_crop_arr, list_image_folder, load_image
from tests.scale.helpers import accelerate_launch, tiny_autoencoder
from ucgm_lab.training.latents import (
    INDEX_FILE,
    STATS_FILE,
    LatentIndex,
    LatentShardDataSource,
    LatentShardError,
    LatentStats,
    read_shard,
    shard_name,
)

CLASSES = ("n001_cat", "n002_dog", "n003_fox")
SIZES = [(40, 24), (16, 16), (23, 37), (64, 48)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / "images" / name).mkdir(parents=True)
        for i, (w, h) in enumerate(SIZES):
            arr = (rng.uniform(0, 255, (h, w, 3)) * 0.5 + 60 * c).clip(0, 255).astype(np.uint8)
            ext = "JPEG" if i % 2 else "png"
            Image.fromarray(arr).save(root / "images" / name / f"img_{i}.{ext}")
    tiny_autoencoder(root / "vae")
    return root


def _args(ws, out, image_size=16):
    return [
        "--data-dir",
        str(ws / "images"),
        "--output",
        str(out),
        "--image-size",
        str(image_size),
        "--autoencoder",
        str(ws / "vae"),
        "--shard-size",
        "5",
        "--batch-size",
        "3",
        "--num-workers",
        "0",
    ]


def test_center_crop_follows_adm():
    """300 x 100 -> box-halved to 150 x 50 -> bicubic to 96 x 32 -> center 32 x 32."""
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 300, 3), dtype=np.uint8))
    expected = np.asarray(img.resize((150, 50), Image.BOX).resize((96, 32), Image.BICUBIC))[
        :, 32:64
    ]
    np.testing.assert_array_equal(center_crop_arr(img, 32), expected)
    x = load_image_from(img)
    assert x.shape == (3, 32, 32) and -1 <= float(x.min()) and float(x.max()) <= 1


def load_image_from(img, tmp=None):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.png"
        img.save(path)
        return load_image(path, 32)


def test_extraction_encodes_images_and_flips(workspace, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = workspace / "latents"
    assert extract_latents.main(_args(workspace, out)) == 0
    index = LatentIndex.load(out)
    assert index.total == 12 and index.latent_shape == (4, 4, 4) and index.num_classes == 3
    assert [s.name for s in index.shards] == [shard_name(i) for i in range(3)]
    assert index.metadata["classes"] == list(CLASSES)

    listing = list_image_folder(workspace / "images")
    ae = load_autoencoder(AutoencoderConfig(str(workspace / "vae")))
    images = torch.stack([load_image(workspace / "images" / f, 16) for f in listing.files])
    expected = encode_images(ae, images).half()
    expected_flip = encode_images(ae, images.flip(-1)).half()
    shards = [read_shard(out / s.name) for s in index.shards]
    torch.testing.assert_close(
        torch.cat([s["latents"] for s in shards]), expected, rtol=2e-3, atol=2e-3
    )
    torch.testing.assert_close(
        torch.cat([s["latents_flip"] for s in shards]), expected_flip, rtol=2e-3, atol=2e-3
    )
    assert torch.cat([s["labels"] for s in shards]).tolist() == list(listing.labels)

    stats = LatentStats.load(out / STATS_FILE)
    both = torch.cat([torch.cat([s["latents"], s["latents_flip"]]) for s in shards]).double()
    torch.testing.assert_close(stats.mean, both.mean(dim=(0, 2, 3)))
    # the folder feeds the trainer's data source directly
    batch = LatentShardDataSource(out, batch_size=4).next_batch()
    assert batch.x.shape == (4, 4, 4, 4)


def test_rerun_skips_finished_shards_and_redoes_a_missing_one(workspace, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = workspace / "latents_resume"
    extract_latents.main(_args(workspace, out))
    kept = {i: (out / shard_name(i)).read_bytes() for i in (0, 2)}
    (out / shard_name(1)).unlink()
    calls = []
    real = extract_latents._encode_shard
    monkeypatch.setattr(
        extract_latents, "_encode_shard", lambda *a, **k: calls.append(a[3]) or real(*a, **k)
    )
    extract_latents.main(_args(workspace, out))
    assert calls == [1]
    assert {i: (out / shard_name(i)).read_bytes() for i in (0, 2)} == kept
    assert LatentIndex.load(out).total == 12


def test_corrupt_shard_or_changed_settings_stop_without_touching_files(workspace, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = workspace / "latents_corrupt"
    extract_latents.main(_args(workspace, out))
    shard = out / shard_name(1)
    shard.write_bytes(shard.read_bytes()[:100])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(LatentShardError, match=rf"{shard_name(1)} is corrupt or truncated"):
        extract_latents.main([*_args(workspace, out), "--debug"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(ValueError, match=r"\['image_size'\] differ from .*extraction.json"):
        extract_latents.main([*_args(workspace, out, image_size=32), "--debug"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert json.loads((out / INDEX_FILE).read_text())["total"] == 12


@pytest.mark.slow
def test_two_processes_write_the_same_folder(workspace):
    """accelerate launch with 2 CPU processes: shards split by rank, index and stats from both."""
    single = workspace / "latents_single"
    if not (single / INDEX_FILE).exists():
        extract_latents.main(_args(workspace, single))
    out = workspace / "latents_2proc"
    result = accelerate_launch("extract_latents.py", _args(workspace, out))
    assert result.returncode == 0, result.stderr[-4000:]
    assert "[rank 1] wrote" in result.stdout
    a, b = LatentIndex.load(single), LatentIndex.load(out)
    assert [s.count for s in a.shards] == [s.count for s in b.shards]
    for s in a.shards:
        ta, tb = read_shard(single / s.name), read_shard(out / s.name)
        for key in ta:
            torch.testing.assert_close(ta[key], tb[key], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(
        LatentStats.load(single / STATS_FILE).std, LatentStats.load(out / STATS_FILE).std
    )
