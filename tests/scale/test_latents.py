import json
import os

import pytest
import torch

from tests.scale.helpers import make_latent_folder
from ucgm_lab.training.latents import (
    INDEX_FILE,
    STATS_FILE,
    LatentIndex,
    LatentNormalizer,
    LatentShardDataSource,
    LatentShardError,
    LatentStats,
    read_shard,
    shard_name,
)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "latents"
    make_latent_folder(root, n=30, shard_size=7)  # 5 shards, the last one short
    return root


def _all_items(root):
    index = LatentIndex.load(root)
    shards = [read_shard(root / s.name) for s in index.shards]
    return (
        torch.cat([s["latents"] for s in shards]),
        torch.cat([s["latents_flip"] for s in shards]),
        torch.cat([s["labels"] for s in shards]),
    )


@pytest.mark.parametrize("preload", [False, True])
def test_global_batches_are_split_across_ranks(folder, preload):
    """Rank r gets items r::W of the same global batch a single process sees."""
    single = LatentShardDataSource(folder, batch_size=6, seed=3, preload=preload)
    ranks = [
        LatentShardDataSource(folder, batch_size=6, seed=3, rank=r, world_size=3, preload=preload)
        for r in range(3)
    ]
    for _ in range(7):  # crosses an epoch boundary (5 batches per epoch)
        whole = single.next_batch()
        parts = [src.next_batch() for src in ranks]
        for r, part in enumerate(parts):
            torch.testing.assert_close(part.x, whole.x[r::3])
            assert torch.equal(part.y, whole.y[r::3])
    assert single.epoch == 1


def test_batches_are_the_stored_latents_or_their_flips(folder):
    lat, flip, labels = _all_items(folder)
    src = LatentShardDataSource(folder, batch_size=30, seed=0, flip=True)
    batch = src.next_batch()
    perm, flips = src._epoch_order()
    expected = torch.where(flips[perm][:, None, None, None], flip[perm], lat[perm])
    torch.testing.assert_close(batch.x, expected.float())
    assert torch.equal(batch.y, labels[perm])
    assert 0 < int(flips.sum()) < 30
    no_flip = LatentShardDataSource(folder, batch_size=30, seed=0, flip=False).next_batch()
    torch.testing.assert_close(no_flip.x, lat[perm].float())


def test_per_channel_normalisation_uses_the_stats(folder):
    lat, flip, _ = _all_items(folder)
    stats = LatentStats.load(folder / STATS_FILE)
    both = torch.cat([lat, flip]).double()
    torch.testing.assert_close(stats.mean, both.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(stats.std, both.transpose(0, 1).reshape(4, -1).std(dim=1))
    norm = LatentNormalizer.from_folder(folder, "per_channel")
    src = LatentShardDataSource(folder, batch_size=30, seed=0, normalizer=norm)
    x = src.next_batch().x
    assert x.mean().abs() < 0.2 and (x.std() - 1).abs() < 0.2
    torch.testing.assert_close(
        norm.denormalize(norm.normalize(lat)), lat.float(), rtol=1e-5, atol=1e-5
    )
    scalar = LatentNormalizer("scalar", scale=0.5)
    torch.testing.assert_close(scalar.denormalize(scalar.normalize(lat)), lat.float())


def test_resume_continues_the_same_stream(folder):
    straight = LatentShardDataSource(folder, batch_size=4, seed=1, rank=1, world_size=2)
    first = [straight.next_batch() for _ in range(9)]
    a = LatentShardDataSource(folder, batch_size=4, seed=1, rank=1, world_size=2)
    for _ in range(4):
        a.next_batch()
    state = json.loads(json.dumps(a.state_dict()))  # survives serialisation
    b = LatentShardDataSource(folder, batch_size=4, seed=1, rank=1, world_size=2)
    b.load_state_dict(state)
    for expected in first[4:]:
        got = b.next_batch()
        torch.testing.assert_close(got.x, expected.x)
        assert torch.equal(got.y, expected.y)
    other = LatentShardDataSource(folder, batch_size=6, seed=1, rank=1, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        other.load_state_dict(state)


def test_missing_shard_names_the_file(folder):
    os.remove(folder / shard_name(2))
    with pytest.raises(LatentShardError, match=shard_name(2)):
        LatentShardDataSource(folder, batch_size=4)


def test_corrupt_shard_names_the_file_and_leaves_the_others(folder):
    path = folder / shard_name(1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != path.name}
    with pytest.raises(LatentShardError, match=rf"{shard_name(1)} is corrupt or truncated"):
        LatentShardDataSource(folder, batch_size=4)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != path.name} == before


def test_bit_flip_is_caught_by_checksums(folder):
    path = folder / shard_name(0)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the tensor data: the header still parses
    path.write_bytes(bytes(data))
    LatentShardDataSource(folder, batch_size=4)  # headers are fine
    with pytest.raises(LatentShardError, match=f"{shard_name(0)} does not match its sha256"):
        LatentShardDataSource(folder, batch_size=4, verify_checksums=True)


def test_unfinished_folder_and_inconsistent_index(folder):
    index_path = folder / INDEX_FILE
    raw = json.loads(index_path.read_text())
    raw["shards"][0]["count"] = 99
    index_path.write_text(json.dumps(raw))
    with pytest.raises(LatentShardError, match=rf"{shard_name(0)} holds 7 latents"):
        LatentShardDataSource(folder, batch_size=4)
    os.remove(index_path)
    with pytest.raises(LatentShardError, match="not a finished latent folder"):
        LatentShardDataSource(folder, batch_size=4)


def test_bad_arguments(folder):
    with pytest.raises(ValueError, match="divisible"):
        LatentShardDataSource(folder, batch_size=5, world_size=2)
    with pytest.raises(ValueError, match="exceeds"):
        LatentShardDataSource(folder, batch_size=64)
