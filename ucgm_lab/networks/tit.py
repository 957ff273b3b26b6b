"""``TiT``: the paper's transformer for latent images (DiT with the App. A.1.2 changes).

A DiT (Peebles & Xie) in which every block is conditioned by adaLN-Zero on
``c = MLP(sinusoidal(t)) + class_embedding(y)``, with the four modifications of App. A.1.2:

* SwiGLU feed-forward networks (hidden width ``int(2/3 * mlp_ratio * hidden_size)``, so the
  parameter count matches a GELU MLP of ratio ``mlp_ratio``);
* RMSNorm without learnable parameters in place of LayerNorm;
* rotary position embeddings (2-D RoPE: the first half of every head rotates with the patch
  row, the second half with the patch column);
* parameter-free RMSNorm on the queries and keys of every attention head.

Like the reference implementation (LightningDiT) a fixed 2-D sin-cos position embedding is
also added to the patch tokens (``abs_pos_embed``). Attention uses
:func:`torch.nn.functional.scaled_dot_product_attention`, so it picks flash / memory-efficient
kernels where the device has them. Blocks can be recomputed in the backward pass
(``gradient_checkpointing=True``) to trade compute for memory.

Sizes (docs/paper-notes.md, R2): B = 12 blocks x 768 (12 heads), L = 24 x 1024 (16), XL = 28 x 1152 (16),
with patch sizes 1, 2 or 4 (``TiT-XL/2`` is XL with 2 x 2 patches); ``tiny`` (2 x 32, 2
heads) is for tests. Build one with :func:`tit_from_name`.

The network follows the library's convention ``model(x_t, t, y=None) -> F`` with ``x_t`` of
shape ``(B, C, H, W)``; ``num_classes`` is the null class (used when ``y`` is None and by label
dropout), and ``model.config`` rebuilds the architecture (``TiT(**config_without_kind)``).

The blocks are in :mod:`ucgm_lab.networks.tit_blocks`, the named sizes and the checkpointing
setting in :mod:`ucgm_lab.networks.tit_sizes`; every name is importable from here as before.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ucgm_lab.networks._validation import check_time, flow_map_interval
from ucgm_lab.networks.embeddings import ClassEmbedding, sinusoidal_embedding
from ucgm_lab.networks.tit_blocks import Attention as Attention
from ucgm_lab.networks.tit_blocks import SwiGLU as SwiGLU
from ucgm_lab.networks.tit_blocks import (
    TiTBlock,
    _modulate,
    _sincos_pos_embed,
    apply_rope,
    rms_norm,
    rope_tables,
)
from ucgm_lab.networks.tit_sizes import (
    TIT_PATCH_SIZES,
    TIT_SIZES,
    checkpoint_every,
    checkpoint_setting,
    tit_size,
)

__all__ = [
    "TIT_PATCH_SIZES",
    "checkpoint_every",
    "checkpoint_setting",
    "TIT_SIZES",
    "TiT",
    "TiTBlock",
    "apply_rope",
    "rms_norm",
    "rope_tables",
    "tit_from_name",
    "tit_size",
]

FREQUENCY_EMBEDDING_SIZE = 256


class TiT(nn.Module):
    """The TiT transformer ``F(x_t, t, y)`` on (latent) images of shape (B, C, S, S).

    Args:
        input_size: Side ``S`` of the (square) input, divisible by ``patch_size``.
        in_channels: Channels ``C`` (4 for SD-VAE latents); the output has the same.
        patch_size: Side of the square patches (1, 2 or 4 for the named models).
        hidden_size: Token width.
        depth: Number of blocks.
        num_heads: Attention heads (``hidden_size / num_heads`` divisible by 4 for RoPE).
        mlp_ratio: Feed-forward ratio.
        num_classes: Number of real classes ``K`` (class id ``K`` is the null class), or None
            for an unconditional model.
        time_scale: ``t`` in [0, 1] is multiplied by this before the sinusoidal embedding.
        rope_theta: RoPE base.
        abs_pos_embed: Also add the fixed 2-D sin-cos position embedding (reference).
        qkv_bias: Bias of the QKV projections.
        gradient_checkpointing: Recompute blocks in the backward pass (saves activation
            memory; only active in training mode with gradients enabled): True (or 1) every
            block, an integer k >= 2 every k-th block (blocks 0, k, 2k, ...: partial
            checkpointing, less recomputation), False (or 0) none.
        flow_map: Also take a second time ``r`` (a flow map u(z_t, r, t) for
            :mod:`ucgm_lab.flow_maps`); adds ``r_embedder``. Off (default): the same layers
            and initial weights as without the option.
    """

    kind: ClassVar[str] = "tit"

    def __init__(
        self,
        input_size: int = 32,
        in_channels: int = 4,
        patch_size: int = 2,
        hidden_size: int = 1152,
        depth: int = 28,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_classes: int | None = 1000,
        time_scale: float = 1000.0,
        rope_theta: float = 10000.0,
        abs_pos_embed: bool = True,
        qkv_bias: bool = True,
        gradient_checkpointing: bool | int = False,
        flow_map: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("in_channels", in_channels),
            ("patch_size", patch_size),
            ("hidden_size", hidden_size),
            ("depth", depth),
            ("num_heads", num_heads),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if input_size % patch_size:
            raise ValueError(
                f"input_size {input_size} must be divisible by patch_size {patch_size}."
            )
        if hidden_size % num_heads or (hidden_size // num_heads) % 4:
            raise ValueError(
                "hidden_size / num_heads must be an integer divisible by 4 (2-D RoPE); got "
                f"{hidden_size} / {num_heads}."
            )
        self.input_size, self.in_channels, self.patch_size = input_size, in_channels, patch_size
        self.hidden_size, self.depth, self.num_heads = hidden_size, depth, num_heads
        self.mlp_ratio, self.time_scale, self.rope_theta = (
            float(mlp_ratio),
            float(time_scale),
            float(rope_theta),
        )
        self.abs_pos_embed, self.qkv_bias = bool(abs_pos_embed), bool(qkv_bias)
        self.gradient_checkpointing = checkpoint_setting(gradient_checkpointing)
        if not isinstance(flow_map, bool):
            raise TypeError(f"flow_map must be True or False, got {flow_map!r}")
        self.flow_map = flow_map
        self.num_classes = num_classes
        self.null_class = num_classes
        self.grid = input_size // patch_size

        self.x_embedder = nn.Conv2d(in_channels, hidden_size, patch_size, stride=patch_size)
        self.t_embedder = nn.Sequential(
            nn.Linear(FREQUENCY_EMBEDDING_SIZE, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )
        self.y_embedder = (
            ClassEmbedding(num_classes, hidden_size) if num_classes is not None else None
        )
        self.blocks = nn.ModuleList(
            TiTBlock(hidden_size, num_heads, mlp_ratio, qkv_bias) for _ in range(depth)
        )
        self.final_adaLN = nn.Linear(hidden_size, 2 * hidden_size)
        self.final_linear = nn.Linear(hidden_size, patch_size * patch_size * in_channels)
        # flow_map: the embedder of t - r (MeanFlow's DiT adds it to the t embedding).
        self.r_embedder = (
            nn.Sequential(
                nn.Linear(FREQUENCY_EMBEDDING_SIZE, hidden_size),
                nn.SiLU(),
                nn.Linear(hidden_size, hidden_size),
            )
            if flow_map
            else None
        )
        cos, sin = rope_tables(self.grid, hidden_size // num_heads, rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        pos = _sincos_pos_embed(self.grid, hidden_size) if abs_pos_embed else torch.zeros(0)
        self.register_buffer("pos_embed", pos, persistent=False)
        self.reset_parameters()

    # ------------------------------------------------------------------ construction
    def reset_parameters(self) -> None:
        """DiT initialisation: Xavier linears, zero adaLN-Zero modulations and output layer."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        w = self.x_embedder.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.bias)
        if self.y_embedder is not None:
            nn.init.normal_(self.y_embedder.table.weight, std=0.02)
        nn.init.normal_(self.t_embedder[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder[2].weight, std=0.02)
        if self.r_embedder is not None:
            nn.init.normal_(self.r_embedder[0].weight, std=0.02)
            nn.init.normal_(self.r_embedder[2].weight, std=0.02)
        for layer in [blk.adaLN_modulation for blk in self.blocks] + [
            self.final_adaLN,
            self.final_linear,
        ]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments plus ``"kind": "tit"``.

        ``"flow_map"`` appears only when True, so configs of plain networks are unchanged.
        """
        config: dict[str, Any] = {
            "kind": self.kind,
            "input_size": self.input_size,
            "in_channels": self.in_channels,
            "patch_size": self.patch_size,
            "hidden_size": self.hidden_size,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "num_classes": self.num_classes,
            "time_scale": self.time_scale,
            "rope_theta": self.rope_theta,
            "abs_pos_embed": self.abs_pos_embed,
            "qkv_bias": self.qkv_bias,
            "gradient_checkpointing": self.gradient_checkpointing,
        }
        if self.flow_map:
            config["flow_map"] = True
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TiT:
        """Rebuild from :attr:`config` (the ``"kind"`` key is optional)."""
        kwargs = {k: v for k, v in config.items() if k != "kind"}
        if config.get("kind", cls.kind) != cls.kind:
            raise ValueError(f"config is for kind {config['kind']!r}, not {cls.kind!r}.")
        return cls(**kwargs)

    # ------------------------------------------------------------------ forward
    def forward(
        self, x: Tensor, t: Tensor, y: Tensor | None = None, r: Tensor | None = None
    ) -> Tensor:
        """Predict F (or a flow map's u(z_t, r, t) with ``flow_map=True``).

        Args:
            x: Input x_t, shape (B, C, S, S).
            t: Network time, shape (B,).
            y: Class ids in [0, num_classes], shape (B,), or None (the null class).
            r: Only for ``flow_map=True``: the second time, shape (B,); ``t - r`` is embedded
                by ``r_embedder`` and added to the conditioning. None means r = t.

        Returns:
            F, shape (B, C, S, S).
        """
        b = x.shape[0]
        if x.ndim != 4 or x.shape[1:] != (self.in_channels, self.input_size, self.input_size):
            raise ValueError(
                f"TiT expects x of shape (B, {self.in_channels}, {self.input_size}, "
                f"{self.input_size}), got {tuple(x.shape)}."
            )
        check_time(t, b)
        h = self.x_embedder(x).flatten(2).transpose(1, 2)  # (B, N, D)
        if self.abs_pos_embed:
            h = h + self.pos_embed.to(h.dtype)
        t_freq = sinusoidal_embedding(t, FREQUENCY_EMBEDDING_SIZE, scale=self.time_scale)
        c = self.t_embedder(t_freq.to(self.t_embedder[0].weight.dtype))
        c = c + self._class_embedding(y, b, x.device)
        interval = flow_map_interval("TiT", self.r_embedder is not None, t, r, b)
        if interval is not None:
            r_freq = sinusoidal_embedding(interval, FREQUENCY_EMBEDDING_SIZE, scale=self.time_scale)
            c = c + self.r_embedder(r_freq.to(self.r_embedder[0].weight.dtype))
        every = checkpoint_every(self.gradient_checkpointing)
        use_ckpt = every > 0 and self.training and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            if use_ckpt and i % every == 0:
                h = checkpoint(block, h, c, self.rope_cos, self.rope_sin, use_reentrant=False)
            else:
                h = block(h, c, self.rope_cos, self.rope_sin)
        shift, scale = self.final_adaLN(F.silu(c)).chunk(2, dim=1)
        h = self.final_linear(_modulate(rms_norm(h), shift, scale))  # (B, N, p * p * C)
        return self._unpatchify(h).to(x.dtype)

    def _class_embedding(
        self, y: Tensor | None, batch: int, device: torch.device
    ) -> Tensor | float:
        if self.y_embedder is None:
            if y is not None:
                raise ValueError(
                    "this TiT was built without classes (num_classes=None), so y must be None."
                )
            return 0.0
        if y is None:
            y = torch.full((batch,), self.null_class, dtype=torch.long, device=device)
        elif y.shape != (batch,) or y.is_floating_point() or y.dtype == torch.bool:
            raise ValueError(
                f"y must be an integer tensor of shape ({batch},), got {y.dtype} {tuple(y.shape)}."
            )
        elif y.device.type == "cpu" and not torch.compiler.is_compiling():
            # Range check without a device sync (on accelerators the embedding asserts instead).
            if int(y.min()) < 0 or int(y.max()) > self.null_class:
                raise ValueError(
                    f"class ids must lie in [0, {self.null_class}] ({self.null_class} is the null "
                    f"class), got values in [{int(y.min())}, {int(y.max())}]."
                )
        return self.y_embedder(y.long())

    def _unpatchify(self, h: Tensor) -> Tensor:
        """(B, N, p * p * C) -> (B, C, S, S)."""
        b, p, c, g = h.shape[0], self.patch_size, self.in_channels, self.grid
        h = h.reshape(b, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(b, c, g * p, g * p)

    # ------------------------------------------------------------------ compilation
    def compile_blocks(self, **kwargs: Any) -> TiT:
        """Compile every block in place with ``torch.compile`` (the reference compiles per block).

        In place (``nn.Module.compile``): parameters, ``state_dict`` keys and DDP's hooks stay
        as they are, so it may be applied after the DDP wrap, and every block reuses the graph
        of the first (same shapes). The options are remembered, and ``copy.deepcopy`` of the
        model (how EMA and frozen teachers are made) compiles the copy's blocks alike (a plain
        deep copy of an ``nn.Module.compile``-d module is not compiled).

        Args:
            **kwargs: Options of ``torch.compile`` (e.g. ``backend="inductor"``).

        Returns:
            The model itself.
        """
        for block in self.blocks:
            block.compile(**kwargs)
        self.block_compile_options: dict[str, Any] | None = dict(kwargs)
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> TiT:
        """The usual deep copy, with its blocks compiled as this model's are (if they are)."""
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        clone.__setstate__(copy.deepcopy(self.__dict__, memo))  # nn.Module's state is __dict__
        options = getattr(self, "block_compile_options", None)
        if options is not None:
            clone.compile_blocks(**options)
        return clone

    # ------------------------------------------------------------------ cost model
    def forward_flops(self) -> int:
        """Floating-point operations of one forward pass for one sample (2 per multiply-add).

        Counts the matrix multiplications (patch embedding, QKV, attention scores and values,
        projections, SwiGLU, adaLN, output layer, time MLP); element-wise work is left out, as
        is usual for model FLOPs utilisation.
        """
        n, d, p, c = self.grid**2, self.hidden_size, self.patch_size, self.in_channels
        hidden = int(2 / 3 * self.mlp_ratio * d)
        per_block = (
            2 * n * d * 3 * d  # qkv
            + 2 * 2 * n * n * d  # scores and weighted values
            + 2 * n * d * d  # output projection
            + 2 * n * (d * 2 * hidden + hidden * d)  # SwiGLU
            + 2 * d * 6 * d  # adaLN modulation (per sample)
        )
        embed = 2 * n * c * p * p * d + 2 * (FREQUENCY_EMBEDDING_SIZE * d + d * d)
        head = 2 * d * 2 * d + 2 * n * d * p * p * c
        return int(self.depth * per_block + embed + head)

    def extra_repr(self) -> str:
        """Summary for ``print(model)``."""
        return (
            f"input_size={self.input_size}, in_channels={self.in_channels}, "
            f"patch_size={self.patch_size}, hidden_size={self.hidden_size}, depth={self.depth}, "
            f"num_heads={self.num_heads}, num_classes={self.num_classes}, "
            f"gradient_checkpointing={self.gradient_checkpointing}"
        )


def tit_from_name(name: str, *, input_size: int, in_channels: int, **kwargs: Any) -> TiT:
    """Build a named TiT (``"TiT-B/2"``, ``"TiT-L/1"``, ``"TiT-XL/4"``, ``"TiT-tiny/1"``, ...).

    Args:
        name: ``TiT-<size>/<patch>``; sizes from :data:`TIT_SIZES`.
        input_size: Side of the latent images.
        in_channels: Latent channels.
        **kwargs: Other :class:`TiT` arguments (``num_classes``, ``gradient_checkpointing``, ...).

    Returns:
        A freshly initialised :class:`TiT`.
    """
    return TiT(input_size=input_size, in_channels=in_channels, **tit_size(name), **kwargs)
