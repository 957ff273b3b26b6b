"""The peer models in the zoo: stored, loadable, trained, and rebuilt by their build command."""

import pytest
import torch

pytest.importorskip("torchcfm")
pytest.importorskip("flow_matching")
pytest.importorskip("torchdiffeq")

from toy_data import sample_2d  # noqa: E402
from ucgm_lab.peers import PEER_LIBRARIES, make_metric, peer_solve  # noqa: E402
from ucgm_lab.training import CheckpointError  # noqa: E402
from ucgm_lab.training.checkpoint import update_manifest  # noqa: E402
from ucgm_lab.zoo.__main__ import main as zoo_main  # noqa: E402
from ucgm_lab.zoo.peers import (  # noqa: E402
    PEER_ZOO_CONFIG,
    available_peers,
    build_peers,
    load_peer,
    peer_zoo_name,
)


def test_both_peer_models_are_in_the_repository():
    assert available_peers() == list(PEER_LIBRARIES)


@pytest.mark.parametrize("library", PEER_LIBRARIES)
def test_stored_peer_model_metadata_and_quality(library):
    zp = load_peer(library)
    assert zp.name == f"peer-{library}-checkerboard"
    assert zp.config == PEER_ZOO_CONFIG
    assert zp.metadata["library"] == library and zp.metadata["train_seconds"] > 0
    assert zp.peer.library == library and zp.peer.losses == []
    # a trained model: 32 Euler steps come close to the data, an untrained one does not
    # (measured at 2000 points: torchcfm 0.090, flow_matching 0.059; after 1 training step
    # 0.38 and 0.22; the data floor is 0.036)
    n = 2000
    metric = make_metric(64)
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(7))
    reference = sample_2d("checkerboard", n, seed=10_000).points
    score = metric(peer_solve(zp.peer, noise, "euler", steps=32).sample, reference)
    assert score < 0.12, f"{library}: sliced W2 {score:.3f}"
    ucgm = zp.peer.adapted.sample(noise, steps=10, native_grid=True, kappa=0.0, order=1)
    torch.testing.assert_close(
        ucgm.sample, peer_solve(zp.peer, noise, "euler", steps=10).sample, atol=1e-5, rtol=1e-5
    )


def test_build_writes_what_load_reads(tmp_path):
    (path,) = build_peers(["flow_matching"], tmp_path, steps_scale=0.005)
    assert path.name == "peer-flow_matching-checkerboard.safetensors"
    zp = load_peer("flow_matching", tmp_path)
    assert zp.config.steps == 20 and zp.metadata["final_loss"] > 0
    x, s = torch.randn(5, 2), torch.rand(5)
    again = load_peer("flow_matching", tmp_path)
    torch.testing.assert_close(zp.peer.velocity(x, s), again.peer.velocity(x, s))


def test_command_line_builds_and_lists(tmp_path, capsys):
    zoo_main(
        ["build-peers", "--only", "torchcfm", "--out", str(tmp_path), "--steps-scale", "0.005"]
    )
    assert "peer-torchcfm-checkerboard.safetensors" in capsys.readouterr().out
    assert (tmp_path / "peer-torchcfm-checkerboard.safetensors").is_file()
    zoo_main(["list"])
    assert "peer-flow_matching-checkerboard" in capsys.readouterr().out


def test_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="peer library"):
        peer_zoo_name("diffusers")
    with pytest.raises(ValueError, match="peer library"):
        build_peers(["diffusers"], tmp_path)
    with pytest.raises(CheckpointError, match="build-peers --only torchcfm"):
        load_peer("torchcfm", tmp_path)
    # a file of the wrong library under a peer's name is refused
    (path,) = build_peers(["flow_matching"], tmp_path, steps_scale=0.001)
    renamed = path.rename(tmp_path / "peer-torchcfm-checkerboard.safetensors")
    with pytest.raises(CheckpointError, match="not listed in"):  # the folder's checksums
        load_peer("torchcfm", tmp_path)
    update_manifest(renamed)  # even with a matching checksum, the metadata gives it away
    with pytest.raises(CheckpointError, match="flow_matching"):
        load_peer("torchcfm", tmp_path)
