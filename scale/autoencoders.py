"""Which autoencoder classes a config or a command line may name (no module is imported here).

``autoencoder.class_path`` (and ``--autoencoder-class`` of extract_latents.py) names the class
whose ``from_pretrained`` loads the autoencoder. Importing a module named in a file runs that
module's code (with ``python -m`` the current folder is on the import path, so an
``evilmod.py`` beside the config would run), so only the diffusers image autoencoders of
:data:`SUPPORTED_AUTOENCODERS` are accepted by name; any other ``module:Class`` or
``package.Class`` needs the explicit opt-in ``autoencoder.allow_custom_class: true``
(``--allow-custom-autoencoder``).
"""

from __future__ import annotations

__all__ = ["SUPPORTED_AUTOENCODERS", "resolve_autoencoder_class"]

SUPPORTED_AUTOENCODERS = (
    "AutoencoderKL",
    "AsymmetricAutoencoderKL",
    "AutoencoderTiny",
    "AutoencoderDC",
    "ConsistencyDecoderVAE",
    "VQModel",
)
"""The diffusers image autoencoders accepted by name (``X``, ``diffusers.X`` or ``diffusers:X``)."""


def resolve_autoencoder_class(class_path: str, allow_custom: bool = False) -> tuple[str, str]:
    """The (module, class name) to import for a class path, or a one-line ValueError.

    Args:
        class_path: ``"AutoencoderKL"``, ``"diffusers.AutoencoderKL"``, ``"diffusers:X"``, or
            (with ``allow_custom``) any ``"package.Class"`` / ``"module:Class"``.
        allow_custom: Accept a class outside :data:`SUPPORTED_AUTOENCODERS` (its module is
            imported, so its code runs).

    Raises:
        ValueError: The path is malformed, or names an unsupported class without
            ``allow_custom``; the message lists the supported classes and the opt-in.
    """
    if not isinstance(class_path, str) or not class_path.strip():
        raise ValueError(f"autoencoder class_path must be a class name, got {class_path!r}.")
    text = class_path.strip()
    if ":" in text:
        module, _, name = text.partition(":")
    elif "." in text:
        module, _, name = text.rpartition(".")
    else:
        module, name = "diffusers", text
    if module == "diffusers" and name in SUPPORTED_AUTOENCODERS:
        return module, name
    supported = ", ".join(SUPPORTED_AUTOENCODERS)
    if not allow_custom:
        raise ValueError(
            f"autoencoder class {class_path!r} is not one of the supported diffusers autoencoders "
            f"({supported}); a class from another module runs that module's code when imported, "
            "so it needs the explicit opt-in autoencoder.allow_custom_class: true "
            "(extract_latents.py: --allow-custom-autoencoder)."
        )
    if not module or not name or not all(p.isidentifier() for p in (*module.split("."), name)):
        raise ValueError(
            f"autoencoder class_path must be 'package.Class' or 'module:Class' (or one of "
            f"{supported}), got {class_path!r}."
        )
    return module, name
