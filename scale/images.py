"""Image helpers without torchvision: ImageFolder listing, ADM center crop, grids and PNGs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ucgm_lab.training.checkpoint import atomic_write

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolderListing",
    "center_crop_arr",
    "latent_preview",
    "list_image_folder",
    "load_image",
    "make_grid",
    "save_png",
]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
)
"""File suffixes (compared in lower case) that count as images."""


@dataclass(frozen=True)
class ImageFolderListing:
    """The files of an ImageFolder-layout tree (``root/<class>/<image>``), in a fixed order.

    Attributes:
        classes: Class folder names, sorted; class id = position.
        files: Image paths relative to the root, sorted by class then name.
        labels: Class id of every file.
    """

    classes: tuple[str, ...]
    files: tuple[str, ...]
    labels: tuple[int, ...]


def list_image_folder(root: str | Path) -> ImageFolderListing:
    """List an ImageFolder tree like torchvision's ``ImageFolder`` (sorted classes and files).

    Raises:
        FileNotFoundError: If ``root`` is missing or holds no class folders with images.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(
            str(p.relative_to(root))
            for p in (root / name).rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        files += found
        labels += [label] * len(found)
    if not files:
        raise FileNotFoundError(
            f"No images under {root}: expected the ImageFolder layout root/<class>/<image>."
        )
    return ImageFolderListing(tuple(classes), tuple(files), tuple(labels))


def center_crop_arr(image: object, image_size: int) -> np.ndarray:
    """ADM's center crop: halve with a box filter while possible, bicubic resize, crop the center.

    Args:
        image: A PIL image (RGB).
        image_size: Side of the square output.

    Returns:
        uint8 array of shape (image_size, image_size, 3).
    """
    from PIL import Image

    while min(*image.size) >= 2 * image_size:
        image = image.resize(tuple(s // 2 for s in image.size), resample=Image.BOX)
    scale = image_size / min(*image.size)
    image = image.resize(tuple(round(s * scale) for s in image.size), resample=Image.BICUBIC)
    arr = np.asarray(image)
    top = (arr.shape[0] - image_size) // 2
    left = (arr.shape[1] - image_size) // 2
    return arr[top : top + image_size, left : left + image_size]


def load_image(path: str | Path, image_size: int) -> Tensor:
    """Open, convert to RGB, center-crop; return a float tensor in [-1, 1] of shape (3, S, S)."""
    from PIL import Image

    with Image.open(path) as img:
        arr = center_crop_arr(img.convert("RGB"), image_size)
    return torch.from_numpy(np.array(arr)).permute(2, 0, 1).float() / 127.5 - 1.0


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2) -> Tensor:
    """Tile uint8 images (B, 3, H, W) into one uint8 image (3, H', W') (rows of ``nrow``)."""
    b, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(b))))
    rows = int(math.ceil(b / nrow))
    grid = torch.zeros(
        c, rows * (h + padding) + padding, nrow * (w + padding) + padding, dtype=images.dtype
    )
    for i in range(b):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    return grid


def save_png(image: Tensor, path: str | Path) -> Path:
    """Atomically save a uint8 image (3, H, W) or (1, H, W) as PNG."""
    from PIL import Image

    arr = image.permute(1, 2, 0).cpu().numpy()
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    pil = Image.fromarray(np.ascontiguousarray(arr))
    return atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"))


def latent_preview(latents: Tensor) -> Tensor:
    """Latents (B, C, h, w) as uint8 pictures (B, 3, h, w) of their first three channels.

    Each channel is scaled by its range over the batch; used for grids when no autoencoder is
    configured.
    """
    x = latents.float()
    if x.shape[1] >= 3:
        x = x[:, :3]
    else:
        x = x[:, :1].expand(-1, 3, -1, -1)
    lo = x.amin(dim=(0, 2, 3), keepdim=True)
    hi = x.amax(dim=(0, 2, 3), keepdim=True)
    return ((x - lo) / (hi - lo).clamp_min(1e-8) * 255).round().to(torch.uint8)
