"""The checkpoint package: one job per module, every name still importable from the package."""

import importlib

import pytest

import ucgm_lab.training.checkpoint as checkpoint

# The names `from ucgm_lab.training.checkpoint import ...` served when it was one module.
PUBLIC_NAMES = {
    "ALLOWED_GLOBALS",
    "CHECKPOINT_FORMAT_VERSION",
    "DIGEST_KEY",
    "MANIFEST_NAME",
    "CheckpointError",
    "atomic_write",
    "check_writable_dir",
    "file_sha256",
    "load_checkpoint",
    "load_weights",
    "read_zoo_file",
    "remove_orphan_temporaries",
    "save_checkpoint",
    "save_weights",
    "seal_checkpoint",
    "seal_weights",
    "update_manifest",
    "verify_manifest",
}
HOMES = {
    "files": {
        "CHECKPOINT_FORMAT_VERSION",
        "CheckpointError",
        "atomic_write",
        "check_writable_dir",
        "file_sha256",
        "remove_orphan_temporaries",
    },
    "manifest": {"MANIFEST_NAME", "update_manifest", "verify_manifest"},
    "training_state": {
        "ALLOWED_GLOBALS",
        "DIGEST_KEY",
        "load_checkpoint",
        "save_checkpoint",
        "seal_checkpoint",
    },
    "weights": {"load_weights", "read_zoo_file", "save_weights", "seal_weights"},
}


def test_every_public_name_is_served_by_the_package():
    assert set(checkpoint.__all__) == PUBLIC_NAMES
    namespace: dict = {}
    exec("from ucgm_lab.training.checkpoint import *", namespace)  # noqa: S102 - our own package
    assert PUBLIC_NAMES <= set(namespace)


@pytest.mark.parametrize("module", sorted(HOMES))
def test_each_name_lives_in_one_module_and_the_package_reexports_that_object(module):
    sub = importlib.import_module(f"ucgm_lab.training.checkpoint.{module}")
    assert set(sub.__all__) >= HOMES[module]
    for name in HOMES[module]:
        assert getattr(checkpoint, name) is getattr(sub, name)


def test_the_training_package_reexports_the_same_objects():
    import ucgm_lab.training as training

    for name in ("CheckpointError", "load_checkpoint", "load_weights", "save_checkpoint"):
        assert getattr(training, name) is getattr(checkpoint, name)


def test_one_error_type_for_every_module():
    """A caller catching CheckpointError catches what any of the four modules raises."""
    for module in HOMES:
        sub = importlib.import_module(f"ucgm_lab.training.checkpoint.{module}")
        assert getattr(sub, "CheckpointError", checkpoint.CheckpointError) is (
            checkpoint.CheckpointError
        )
