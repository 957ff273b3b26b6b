"""``SmallUNet``: a compact UNet for small images (8x8 digits, 32x32 CIFAR).

Layout (``L = len(channel_mults)`` levels, level ``i`` at resolution ``image_size / 2**i`` with
``base_channels * channel_mults[i]`` channels)::

    conv_in -> [level 0: num_res_blocks ResBlocks, skip, downsample] -> ...
            -> [level L-1: num_res_blocks ResBlocks, skip]
            -> middle: 2 ResBlocks
            -> [level L-1: concat skip, num_res_blocks ResBlocks, upsample] -> ...
            -> [level 0: concat skip, num_res_blocks ResBlocks]
            -> GroupNorm -> SiLU -> conv_out (zero-initialised)

Each ResBlock is ``GroupNorm -> SiLU -> conv3x3 -> FiLM(emb) -> SiLU -> conv3x3`` plus a
(1x1-projected) skip connection, where FiLM is an adaptive GroupNorm
``GN(h) * (1 + scale) + shift`` with ``(scale, shift)`` a linear map of the conditioning
vector ``emb = MLP(sinusoidal(t)) + class_embedding(y)``. GroupNorm layers use
``gcd(channels, 8)`` groups. Downsampling is a stride-2 3x3 conv, upsampling is
nearest-neighbour x2 followed by a 3x3 conv.

The final conv ``conv_out`` is initialised to zero (common practice for diffusion UNets), so a
freshly built network outputs exactly zero for every input; its output starts depending on
``x_t``, ``t`` and ``y`` after the first optimiser step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ucgm_lab.networks._validation import check_time, flow_map_interval, resolve_labels
from ucgm_lab.networks.embeddings import ClassEmbedding, SinusoidalTimeEmbedding

MAX_GROUPS = 8


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, MAX_GROUPS), channels)


class ResBlock(nn.Module):
    """Residual conv block with FiLM (adaptive GroupNorm) conditioning.

    Args:
        in_channels: Channels of the input feature map.
        out_channels: Channels of the output feature map.
        emb_dim: Size of the conditioning vector.
    """

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = _group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * out_channels)
        self.norm2 = _group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.skip = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x: Feature map ``(B, in_channels, H, W)``.
            emb: Conditioning vectors ``(B, emb_dim)``.

        Returns:
            Feature map ``(B, out_channels, H, W)``.
        """
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb_proj(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3x3 conv (channels unchanged)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(B, C, H, W)`` to ``(B, C, H/2, W/2)``."""
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour x2 then a 3x3 conv (channels unchanged)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(B, C, H, W)`` to ``(B, C, 2H, 2W)``."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SmallUNet(nn.Module):
    """Compact class-conditional (optional) UNet ``F(x_t, t, y)`` for square images.

    Args:
        in_channels: Image channels ``C`` (1 for digits, 3 for CIFAR); output has the same.
        image_size: Side ``S`` of the square images (e.g. 8 or 32); must be divisible by
            ``2 ** (len(channel_mults) - 1)``.
        base_channels: Channels of the first level.
        channel_mults: Channel multiplier of each level; one level per entry, each level but
            the last halves the resolution.
        num_res_blocks: ResBlocks per level on the way down and on the way up.
        num_classes: ``None`` for an unconditional model, or the number of real classes ``K``;
            class id ``K`` is the null class (see :attr:`null_class`).
        time_embed_dim: Size of the sinusoidal time embedding and of the conditioning vector
            (positive, even).
        time_scale: ``t`` in ``[0, 1]`` is multiplied by this inside the embedding (1000 maps
            it onto DDPM's step range). Few-step (lambda > 0) training differentiates the network
            in t with steps of 0.005, so the image recipes use 30, which keeps the fastest
            sinusoid smooth at that resolution (``ucgm_lab.time_sensitivity``).
        flow_map: Also take a second time ``r`` (``forward(x_t, t, y, r=r)``, a flow map
            u(z_t, r, t) for :mod:`ucgm_lab.flow_maps`): ``t - r`` gets its own embedding MLP,
            added to the conditioning vector. Off (default): the same layers, initial
            weights and outputs as without the option.

    Attributes:
        num_classes: As given (``None`` when unconditional).
        null_class: ``num_classes`` for a conditional model, else ``None``.
        kind: ``"small_unet"``, the key of this class for
            :func:`ucgm_lab.networks.build_network`.

    Note:
        ``conv_out`` is zero-initialised, so a new network returns zeros for every input.
    """

    kind: ClassVar[str] = "small_unet"

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2),
        num_res_blocks: int = 1,
        num_classes: int | None = None,
        time_embed_dim: int = 128,
        time_scale: float = 1000.0,
        flow_map: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("image_size", image_size),
            ("base_channels", base_channels),
            ("num_res_blocks", num_res_blocks),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        mults = tuple(channel_mults)
        if not mults or not all(isinstance(m, int) and m >= 1 for m in mults):
            raise ValueError(
                "channel_mults must be a non-empty sequence of positive integers, "
                f"got {channel_mults!r}"
            )
        factor = 2 ** (len(mults) - 1)
        if image_size % factor != 0:
            raise ValueError(
                f"image_size={image_size} must be divisible by "
                f"2**(len(channel_mults)-1) = {factor} "
                f"(channel_mults={mults}); use fewer levels or another image size"
            )
        if num_classes is not None and (
            not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1
        ):
            raise ValueError(f"num_classes must be a positive integer or None, got {num_classes!r}")
        if (
            isinstance(time_scale, bool)
            or not isinstance(time_scale, (int, float))
            or not math.isfinite(time_scale)
            or time_scale <= 0
        ):
            raise ValueError(f"time_scale must be a positive finite number, got {time_scale!r}")

        self.in_channels = in_channels
        self.image_size = image_size
        self.base_channels = base_channels
        self.channel_mults = mults
        self.num_res_blocks = num_res_blocks
        self.num_classes = num_classes
        self.null_class = num_classes
        self.time_embed_dim = time_embed_dim
        self.time_scale = float(time_scale)
        if not isinstance(flow_map, bool):
            raise TypeError(f"flow_map must be True or False, got {flow_map!r}")
        self.flow_map = flow_map

        emb_dim = time_embed_dim
        self.time_embed = SinusoidalTimeEmbedding(time_embed_dim, scale=self.time_scale)
        self.time_mlp = nn.Sequential(
            nn.Linear(time_embed_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.class_embed = ClassEmbedding(num_classes, emb_dim) if num_classes is not None else None

        widths = [base_channels * m for m in mults]
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        ch = base_channels
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(ch, width, emb_dim))
                ch = width
            self.down_blocks.append(blocks)
            last = level == len(widths) - 1
            self.downsamples.append(nn.Identity() if last else Downsample(ch))

        self.mid_blocks = nn.ModuleList([ResBlock(ch, ch, emb_dim), ResBlock(ch, ch, emb_dim)])

        # Up path, stored in level order (index = level) but run from the deepest level.
        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        up_blocks: list[nn.ModuleList] = []
        up_samples: list[nn.Module] = []
        for level in reversed(range(len(widths))):
            width = widths[level]
            blocks = nn.ModuleList()
            in_ch = ch + width  # concat with the skip of this level
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(in_ch, width, emb_dim))
                in_ch = width
            ch = width
            up_blocks.append(blocks)
            up_samples.append(nn.Identity() if level == 0 else Upsample(ch))
        self.up_blocks.extend(reversed(up_blocks))
        self.upsamples.extend(reversed(up_samples))

        self.norm_out = _group_norm(base_channels)
        self.conv_out = nn.Conv2d(base_channels, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        # Made last, so that the other layers draw the same initial weights either way.
        self.interval_mlp = (
            nn.Sequential(
                nn.Linear(time_embed_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
            )
            if flow_map
            else None
        )

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments plus ``"kind"``, for :func:`build_network`.

        ``"flow_map"`` appears only when True, so configs of plain networks are unchanged.
        """
        config: dict[str, Any] = {
            "kind": self.kind,
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "base_channels": self.base_channels,
            "channel_mults": list(self.channel_mults),
            "num_res_blocks": self.num_res_blocks,
            "num_classes": self.num_classes,
            "time_embed_dim": self.time_embed_dim,
            "time_scale": self.time_scale,
        }
        if self.flow_map:
            config["flow_map"] = True
        return config

    def _check_image(self, x_t: Tensor) -> None:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x_t.ndim != 4 or tuple(x_t.shape[1:]) != expected:
            raise ValueError(
                f"SmallUNet(in_channels={self.in_channels}, image_size={self.image_size}) expects "
                f"x_t of shape (B, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(x_t.shape)}"
            )

    def forward(
        self, x_t: Tensor, t: Tensor, y: Tensor | None = None, r: Tensor | None = None
    ) -> Tensor:
        """Evaluate the network.

        Args:
            x_t: Images, shape ``(B, in_channels, image_size, image_size)``.
            t: Times, shape ``(B,)``, floating point in ``[0, 1]``.
            y: ``None`` or int64 class ids ``(B,)`` in ``[0, num_classes]``. Must be ``None``
                for an unconditional model; ``None`` means the null class for a conditional one.
            r: Only for ``flow_map=True``: the second time of a flow map u(z_t, r, t), shape
                ``(B,)``; its interval ``t - r`` is embedded like ``t`` by its own MLP and
                added to the conditioning vector (as MeanFlow's DiT does). ``None`` means
                ``r = t``.

        Returns:
            Output ``F`` with the shape of ``x_t``.

        Raises:
            ValueError: If ``x_t`` has the wrong number of channels or size, or ``t`` / ``y``
                break the convention (see :mod:`ucgm_lab.networks._validation`).
            TypeError: If ``t`` is not floating point or ``y`` is not an integer tensor.
        """
        self._check_image(x_t)
        batch = x_t.shape[0]
        check_time(t, batch)
        labels = resolve_labels(y, batch, self.num_classes, x_t.device)

        emb = self.time_mlp(self.time_embed(t).to(x_t.dtype))
        if self.class_embed is not None:
            emb = emb + self.class_embed(labels).to(x_t.dtype)
        interval = flow_map_interval("SmallUNet", self.interval_mlp is not None, t, r, batch)
        if interval is not None:
            emb = emb + self.interval_mlp(self.time_embed(interval).to(x_t.dtype))

        h = self.conv_in(x_t)
        skips: list[Tensor] = []
        for blocks, down in zip(self.down_blocks, self.downsamples, strict=True):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            h = down(h)
        for block in self.mid_blocks:
            h = block(h, emb)
        for level in reversed(range(len(self.up_blocks))):
            h = torch.cat([h, skips[level]], dim=1)
            for block in self.up_blocks[level]:
                h = block(h, emb)
            h = self.upsamples[level](h)
        return self.conv_out(F.silu(self.norm_out(h)))
