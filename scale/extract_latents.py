r"""Encode an ImageFolder-layout ImageNet into sharded safetensors latents (resumable, distributed).

Every image is ADM-center-cropped to ``--image-size``, scaled to [-1, 1] and encoded with a
diffusers autoencoder (SD-VAE ``AutoencoderKL`` by default; ``--autoencoder-class`` takes the
diffusers autoencoders by name, and any class with ``from_pretrained`` and ``encode`` only with
``--allow-custom-autoencoder``), together with its horizontal flip. Images are
taken in a fixed order (sorted classes, sorted files; class id = position of the folder) and
cut into shards of ``--shard-size``; process r of W encodes shards r, r + W, ... Each shard is
written atomically (``shard-00000.safetensors``: latents, latents_flip, labels) with a digest of
its source files and the settings in its header, so a rerun skips finished shards and a
crashed run loses at most the shards in progress. At the end the processes sum per-channel
moments of their shards and the main process writes ``stats.safetensors`` (per-channel mean and
std over latents and flipped latents) and ``index.json`` (last: its presence marks a finished
folder).

Examples::

    accelerate launch --num_processes 8 -m scale.extract_latents --data-dir /data/imagenet/train \
        --output /data/latents/sdvae_ema_256 --image-size 256 \
        --autoencoder stabilityai/sd-vae-ft-ema
    python -m scale.extract_latents --data-dir imgs --output latents --autoencoder ./tiny_vae
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (`accelerate launch scale/train.py`), not with -m:
    # this checkout's packages come first, not an installed `scale` (nor scale/ as a top level)
    _HERE = Path(__file__).resolve()
    sys.path[:] = [str(_HERE.parents[1])] + [
        p for p in sys.path if Path(p or ".").resolve() != _HERE.parent
    ]

import torch
from torch.utils.data import DataLoader, Dataset

from scale.autoencoders import SUPPORTED_AUTOENCODERS, resolve_autoencoder_class
from scale.builders import check_world_size, encode_images, load_autoencoder, use_cpu
from scale.config import AutoencoderConfig
from scale.errors import report_user_errors
from scale.images import ImageFolderListing, list_image_folder, load_image
from ucgm_lab.training.checkpoint import atomic_write
from ucgm_lab.training.collectives import gather_objects
from ucgm_lab.training.latents import (
    FLIP_KEY,
    LATENT_KEY,
    STATS_FILE,
    LatentIndex,
    LatentShardError,
    LatentStats,
    ShardInfo,
    channel_moments,
    file_sha256,
    inspect_shard,
    read_shard,
    shard_name,
    write_shard,
)

__all__ = ["ExtractionSettings", "extract", "main"]

SETTINGS_FILE = "extraction.json"
_STORAGE = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class ExtractionSettings:
    """What determines the shards' contents (recorded in extraction.json and every shard).

    Attributes:
        data_dir: The ImageFolder root.
        image_size: Side of the center crop.
        autoencoder: ``from_pretrained`` source (hub id or folder).
        autoencoder_class: Class path, e.g. "diffusers.AutoencoderKL".
        subfolder: Subfolder of the autoencoder source.
        autoencoder_dtype: Dtype the autoencoder runs in.
        latent: "mean" (posterior mean) or "sample" (posterior sample, seeded per shard).
        storage_dtype: Dtype of the stored latents.
        shard_size: Images per shard.
        seed: Seed of posterior samples.
        num_images: Number of images listed.
        listing_sha256: Digest of the ordered file list and labels.
    """

    data_dir: str
    image_size: int
    autoencoder: str
    autoencoder_class: str
    subfolder: str | None
    autoencoder_dtype: str
    latent: str
    storage_dtype: str
    shard_size: int
    seed: int
    num_images: int
    listing_sha256: str

    def comparable(self) -> dict[str, Any]:
        """Everything except the data folder's path (it may be mounted elsewhere on resume)."""
        d = asdict(self)
        d.pop("data_dir")
        return d

    def digest(self) -> str:
        """sha256 of :meth:`comparable`."""
        return hashlib.sha256(json.dumps(self.comparable(), sort_keys=True).encode()).hexdigest()


def _listing_digest(files: tuple[str, ...] | list[str], labels: tuple[int, ...] | list[int]) -> str:
    digest = hashlib.sha256()
    for f, y in zip(files, labels, strict=True):
        digest.update(f"{y}\t{f}\n".encode())
    return digest.hexdigest()


class _ShardImages(Dataset):
    """The images of one shard: (image (3, S, S) in [-1, 1], label)."""

    def __init__(self, root: Path, files: list[str], labels: list[int], image_size: int) -> None:
        self.root, self.files, self.labels, self.image_size = root, files, labels, image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        """(image, label, "") or, for a file PIL cannot read, (zeros, label, the reason).

        The reason travels back as data, not as an exception: a DataLoader worker's exception
        reaches the main process with the worker's traceback in its message.
        """
        try:
            return load_image(self.root / self.files[i], self.image_size), self.labels[i], ""
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for a broken file
            empty = torch.zeros(3, self.image_size, self.image_size)
            return empty, self.labels[i], f"{type(exc).__name__}: {exc}"


def _check_settings(out: Path, settings: ExtractionSettings, is_main: bool, barrier: Any) -> None:
    """Record the settings on first use; on resume they must match (nothing is overwritten).

    Settings recorded by a run that stopped before writing any shard (e.g. at a corrupt image)
    protect nothing, so they are replaced by this run's.
    """
    path = out / SETTINGS_FILE
    no_shards = not any(out.glob("shard-*.safetensors"))
    if is_main and (not path.exists() or no_shards):
        text = json.dumps(asdict(settings), indent=2, sort_keys=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    barrier()
    old = json.loads(path.read_text())
    old.pop("data_dir", None)
    new = settings.comparable()
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise ValueError(
            f"{out} was extracted with different settings ({changed} differ from {path}). Extract "
            "into a new --output folder; nothing in this one was changed."
        )


def _shard_is_done(path: Path, files_digest: str, settings_digest: str, count: int) -> bool:
    """True if ``path`` is a finished shard of these files and settings; raises if corrupt."""
    if not path.exists():
        return False
    head = inspect_shard(path)  # LatentShardError naming the file if corrupt
    meta = head["metadata"]
    if meta.get("files_sha256") != files_digest or meta.get("settings_sha256") != settings_digest:
        raise LatentShardError(
            f"Latent shard {path} was made from other images or settings than this run's. Extract "
            "into a new --output folder (nothing was overwritten)."
        )
    if head["count"] != count:
        raise LatentShardError(
            f"Latent shard {path} holds {head['count']} latents, expected {count}."
        )
    return True


def _encode_shard(
    ae: torch.nn.Module,
    dataset: _ShardImages,
    settings: ExtractionSettings,
    shard: int,
    device: torch.device,
    batch_size: int,
    num_workers: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    gen = None
    if settings.latent == "sample":
        gen = torch.Generator(device=device).manual_seed(settings.seed * 1_000_003 + shard)
    storage = _STORAGE[settings.storage_dtype]
    lat, lat_flip, labels = [], [], []
    done = 0
    for images, y, problems in loader:
        for j, problem in enumerate(problems):
            if problem:
                name = dataset.root / dataset.files[done + j]
                raise ValueError(
                    f"cannot read image {name} ({problem}); remove or replace the file and run "
                    "again (finished shards are kept)."
                )
        done += len(problems)
        images = images.to(device)
        z = encode_images(ae, torch.cat([images, images.flip(-1)]), settings.latent, gen)
        z, z_flip = z.chunk(2)
        lat.append(z.to(storage).cpu())
        lat_flip.append(z_flip.to(storage).cpu())
        labels.append(y.long())
    return torch.cat(lat), torch.cat(lat_flip), torch.cat(labels)


def extract(args: argparse.Namespace) -> LatentIndex | None:
    """Run the extraction on this process; returns the index on the main process."""
    from accelerate import PartialState

    from ucgm_lab.training.trainer import enable_tf32

    state = PartialState(cpu=use_cpu())
    enable_tf32(state.device)  # the autoencoder's float32 convolutions and matmuls, on CUDA
    check_world_size(state.num_processes)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    listing: ImageFolderListing = list_image_folder(args.data_dir)
    files, labels = list(listing.files), list(listing.labels)
    if args.limit is not None:
        files, labels = files[: args.limit], labels[: args.limit]
    settings = ExtractionSettings(
        data_dir=str(Path(args.data_dir).resolve()),
        image_size=args.image_size,
        autoencoder=args.autoencoder,
        autoencoder_class=args.autoencoder_class,
        subfolder=args.subfolder,
        autoencoder_dtype=args.autoencoder_dtype,
        latent=args.latent,
        storage_dtype=args.storage_dtype,
        shard_size=args.shard_size,
        seed=args.seed,
        num_images=len(files),
        listing_sha256=_listing_digest(files, labels),
    )
    _check_settings(out, settings, state.is_main_process, state.wait_for_everyone)
    settings_digest = settings.digest()
    num_shards = math.ceil(len(files) / args.shard_size)
    mine = list(range(state.process_index, num_shards, state.num_processes))
    ae = None
    encoded = skipped = 0
    for shard in mine:
        lo, hi = shard * args.shard_size, min(len(files), (shard + 1) * args.shard_size)
        path = out / shard_name(shard)
        files_digest = _listing_digest(files[lo:hi], labels[lo:hi])
        if _shard_is_done(path, files_digest, settings_digest, hi - lo):
            skipped += 1
            continue
        if ae is None:
            ae = load_autoencoder(
                AutoencoderConfig(
                    args.autoencoder,
                    args.autoencoder_class,
                    args.subfolder,
                    args.autoencoder_dtype,
                    allow_custom_class=getattr(args, "allow_custom_autoencoder", False),
                ),
                state.device,
            )
        dataset = _ShardImages(Path(args.data_dir), files[lo:hi], labels[lo:hi], args.image_size)
        z, z_flip, y = _encode_shard(
            ae, dataset, settings, shard, state.device, args.batch_size, args.num_workers
        )
        write_shard(
            path,
            z,
            z_flip,
            y,
            {"shard": str(shard), "files_sha256": files_digest, "settings_sha256": settings_digest},
        )
        encoded += 1
        print(f"[rank {state.process_index}] wrote {path} ({hi - lo} images)", flush=True)
    print(
        f"[rank {state.process_index}] encoded {encoded} shards, skipped {skipped} finished ones",
        flush=True,
    )
    state.wait_for_everyone()

    # Per-channel moments and digests of this process's shards, summed on the main process.
    summaries = []
    for shard in mine:
        path = out / shard_name(shard)
        tensors = read_shard(path)
        n, s, ss = channel_moments(torch.cat([tensors[LATENT_KEY], tensors[FLIP_KEY]]))
        summaries.append(
            {
                "shard": shard,
                "count": int(tensors[LATENT_KEY].shape[0]),
                "sha256": file_sha256(path),
                "n": n,
                "sum": s,
                "sumsq": ss,
                "shape": tuple(tensors[LATENT_KEY].shape[1:]),
                "dtype": inspect_shard(path)["dtype"],
            }
        )
    everything = [row for part in gather_objects(summaries, state.device) for row in part]
    index = None
    if state.is_main_process:
        everything = sorted(everything, key=lambda r: r["shard"])
        if [r["shard"] for r in everything] != list(range(num_shards)):
            raise LatentShardError(
                f"Shards are missing in {out} after extraction; run the script again to resume."
            )
        stats = LatentStats.from_moments(
            sum(r["n"] for r in everything),
            sum(r["sum"] for r in everything),
            sum(r["sumsq"] for r in everything),
        )
        stats.save(out / STATS_FILE)
        index = LatentIndex(
            shards=tuple(
                ShardInfo(shard_name(r["shard"]), r["count"], r["sha256"]) for r in everything
            ),
            latent_shape=everything[0]["shape"],
            num_classes=len(listing.classes),
            dtype=everything[0]["dtype"],
            metadata={"settings": asdict(settings), "classes": list(listing.classes)},
        )
        index.save(out)
        print(
            f"Wrote {out / 'index.json'}: {index.total} latents of shape {index.latent_shape} in "
            f"{num_shards} shards; channel mean {stats.mean.tolist()}, std {stats.std.tolist()}",
            flush=True,
        )
    state.wait_for_everyone()
    # Tear the gloo/NCCL group down before the interpreter exits: left to the exit handlers, its
    # threads were sometimes destroyed while joinable, and a rank aborted after the outputs
    # were complete ("terminate called without an active exception").
    state.destroy_process_group()
    return index


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--data-dir", required=True, help="ImageFolder root: <data-dir>/<class>/<image>."
    )
    p.add_argument("--output", required=True, help="Latent folder to write (or resume).")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument(
        "--autoencoder", default="stabilityai/sd-vae-ft-ema", help="from_pretrained source."
    )
    p.add_argument(
        "--autoencoder-class",
        default="diffusers.AutoencoderKL",
        help=f"A diffusers autoencoder ({', '.join(SUPPORTED_AUTOENCODERS)}), or with "
        "--allow-custom-autoencoder any package.Class / module:Class.",
    )
    p.add_argument(
        "--allow-custom-autoencoder",
        action="store_true",
        help="Accept an --autoencoder-class outside the diffusers autoencoders (its module is "
        "imported, so its code runs).",
    )
    p.add_argument("--subfolder", default=None)
    p.add_argument(
        "--autoencoder-dtype", default="float32", choices=["float32", "bfloat16", "float16"]
    )
    p.add_argument(
        "--latent", default="mean", choices=["mean", "sample"], help="Posterior mean or a sample."
    )
    p.add_argument("--storage-dtype", default="float16", choices=sorted(_STORAGE))
    p.add_argument("--shard-size", type=int, default=10000)
    p.add_argument(
        "--batch-size", type=int, default=64, help="Images per encoder call (doubled with flips)."
    )
    p.add_argument("--num-workers", type=int, default=8, help="Image-decoding worker processes.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="Only the first N images (for trials).")
    p.add_argument(
        "--debug", action="store_true", help="Show the full traceback of an input error."
    )
    args = p.parse_args(argv)
    if args.shard_size < 1 or args.batch_size < 1 or args.image_size < 8:
        p.error("--shard-size and --batch-size must be positive and --image-size at least 8.")
    try:
        resolve_autoencoder_class(args.autoencoder_class, args.allow_custom_autoencoder)
    except ValueError as exc:
        p.error(f"--autoencoder-class: {exc}")
    if args.limit is not None and args.limit < 1:
        p.error(f"--limit must be a positive number of images, got {args.limit}.")
    if args.num_workers < 0:
        p.error(f"--num-workers must be 0 or more, got {args.num_workers}.")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message for an input error)."""
    args = parse_args(argv)

    def run() -> int:
        extract(args)
        return 0

    return report_user_errors("scale/extract_latents.py", run, args.debug)


if __name__ == "__main__":
    sys.exit(main())
