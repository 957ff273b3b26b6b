"""scale.builders: refusing model-sharding accelerate configurations."""

import pytest
from accelerate.utils import DistributedType

from scale import train as train_script
from scale.builders import check_distributed_type
from scale.config import ConfigError
from tests.scale.helpers import train_overrides


@pytest.mark.parametrize("kind", [DistributedType.FSDP, DistributedType.DEEPSPEED, "MEGATRON_LM"])
def test_sharded_accelerate_modes_are_refused(kind, monkeypatch):
    for var in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_MEGATRON_LM"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match=r"does not support.*--multi_gpu.*gradient_checkpointing"):
        check_distributed_type(kind)


@pytest.mark.parametrize("kind", [None, DistributedType.NO, DistributedType.MULTI_GPU, "MULTI_CPU"])
def test_data_parallel_modes_pass(kind, monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    check_distributed_type(kind)


def test_train_refuses_fsdp_from_the_launcher_in_one_line_writing_nothing(
    latents, tmp_path, monkeypatch, capsys
):
    """What `accelerate launch --use_fsdp` sets: refused before accelerate's own errors."""
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    run = tmp_path / "run"
    assert train_script.main(train_overrides(latents, run)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "configured for FSDP" in err[0] and "--multi_gpu" in err[0]
    assert not run.exists()
