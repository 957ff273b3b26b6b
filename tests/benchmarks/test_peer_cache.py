"""benchmarks/peer_samplers.py's weight cache: atomic writes; a damaged file is rebuilt."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

from tests.scale.helpers import REPO

pytest.importorskip("torchcfm")
sys.path.insert(0, str(REPO / "benchmarks"))
peer_samplers = importlib.import_module("peer_samplers")


def test_a_truncated_cache_is_detected_deleted_and_rebuilt(tmp_path, capsys):
    path = tmp_path / "torchcfm-abc.safetensors"
    state = {"w": torch.randn(8, 4), "b": torch.zeros(4)}
    peer_samplers.write_cache(path, state, "torchcfm")
    loaded = peer_samplers.read_cache(path)
    assert loaded is not None and all(torch.equal(loaded[k], v) for k, v in state.items())
    path.write_bytes(path.read_bytes()[:-20])  # cut short, as a kill or a full disk leaves it
    assert peer_samplers.read_cache(path) is None
    assert "is damaged" in capsys.readouterr().out and not path.exists()
    peer_samplers.write_cache(path, state, "torchcfm")  # the rebuilt cache loads again
    assert peer_samplers.read_cache(path) is not None


def test_a_failed_cache_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "torchcfm-abc.safetensors"

    def fails(tensors, filename, metadata=None):
        open(filename, "wb").write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ucgm_lab.training.checkpoint.weights.save_file", fails)
    with pytest.raises(Exception, match="No space left"):
        peer_samplers.write_cache(path, {"w": torch.ones(2)}, "torchcfm")
    assert list(tmp_path.iterdir()) == []
