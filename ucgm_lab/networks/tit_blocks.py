"""The building blocks of :class:`~ucgm_lab.networks.tit.TiT` (App. A.1.2).

Parameter-free RMSNorm, 2-D rotary position embeddings (RoPE), the fixed sin-cos position
embedding, attention with RMSNorm on the queries and keys, the SwiGLU feed-forward network
and the adaLN-Zero block that joins them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Attention", "SwiGLU", "TiTBlock", "apply_rope", "rms_norm", "rope_tables"]


def rms_norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Parameter-free RMSNorm over the last dimension, computed in float32.

    Args:
        x: Shape (..., D).
        eps: Added to the mean square.

    Returns:
        ``x / sqrt(mean(x^2) + eps)``, shape (..., D), in ``x``'s dtype.
    """
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rope_tables(grid: int, head_dim: int, theta: float = 10000.0) -> tuple[Tensor, Tensor]:
    """Cosine and sine tables of 2-D rotary position embeddings for a square patch grid.

    The head dimension is split into four quarters ``[h1, h2, w1, w2]``; (h1, h2) rotate with
    the row index and (w1, w2) with the column index, at frequencies
    ``theta ** (-2 k / (head_dim / 2))`` for ``k < head_dim / 4``.

    Args:
        grid: Patches per side; tokens are in row-major order (``grid ** 2`` of them).
        head_dim: Channels per attention head (divisible by 4).
        theta: RoPE base.

    Returns:
        (cos, sin), each of shape (grid ** 2, head_dim), float32.
    """
    if head_dim % 4:
        raise ValueError(f"2-D RoPE needs a head dimension divisible by 4, got {head_dim}.")
    quarter = head_dim // 4
    freqs = theta ** (-torch.arange(quarter, dtype=torch.float64) * 2 / (head_dim // 2))
    pos = torch.arange(grid, dtype=torch.float64)
    rows = pos.repeat_interleave(grid)  # token n = r * grid + c
    cols = pos.repeat(grid)
    ang_h = rows[:, None] * freqs[None, :]
    ang_w = cols[:, None] * freqs[None, :]
    angles = torch.cat([ang_h, ang_h, ang_w, ang_w], dim=1)
    return angles.cos().float(), angles.sin().float()


def _rotate_quarters(x: Tensor) -> Tensor:
    """``[h1, h2, w1, w2] -> [-h2, h1, -w2, w1]`` over the last dimension."""
    h1, h2, w1, w2 = x.chunk(4, dim=-1)
    return torch.cat([-h2, h1, -w2, w1], dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate queries or keys by their token positions (2-D RoPE).

    Args:
        x: Shape (B, heads, N, head_dim).
        cos: Shape (N, head_dim), from :func:`rope_tables`.
        sin: Shape (N, head_dim).

    Returns:
        Shape (B, heads, N, head_dim), in ``x``'s dtype.
    """
    return x * cos.to(x.dtype) + _rotate_quarters(x) * sin.to(x.dtype)


def _sincos_pos_embed(grid: int, dim: int) -> Tensor:
    """Fixed 2-D sin-cos position embedding (as in DiT), shape (grid ** 2, dim), float32."""
    if dim % 4:
        raise ValueError(
            f"the sin-cos position embedding needs hidden_size divisible by 4, got {dim}."
        )
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    pos = torch.arange(grid, dtype=torch.float64)
    rows, cols = pos.repeat_interleave(grid), pos.repeat(grid)
    parts = []
    for coord in (rows, cols):
        out = coord[:, None] * omega[None, :]
        parts += [out.sin(), out.cos()]
    return torch.cat(parts, dim=1).float()


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """AdaLN modulation ``x * (1 + scale) + shift`` with (B, D) scale/shift over (B, N, D) x."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Attention(nn.Module):
    """Multi-head self-attention with parameter-free QK RMSNorm and 2-D RoPE.

    Args:
        dim: Token width.
        num_heads: Number of heads (``dim`` divisible by it).
        qkv_bias: Bias of the fused QKV projection.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden_size {dim} must be divisible by num_heads {num_heads}.")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Attend.

        Args:
            x: Tokens, shape (B, N, D).
            cos: RoPE cosines, shape (N, head_dim).
            sin: RoPE sines, shape (N, head_dim).

        Returns:
            Shape (B, N, D).
        """
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = apply_rope(rms_norm(q), cos, sin)
        k = apply_rope(rms_norm(k), cos, sin)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class SwiGLU(nn.Module):
    """SwiGLU feed-forward network ``W3 (silu(W1 x) * W2 x)`` (W1, W2 fused).

    Args:
        dim: Token width.
        hidden: Hidden width.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Map (B, N, D) to (B, N, D)."""
        gate, value = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)


class TiTBlock(nn.Module):
    """One TiT block: adaLN-Zero around RMSNorm -> attention and RMSNorm -> SwiGLU.

    Args:
        dim: Token width.
        num_heads: Attention heads.
        mlp_ratio: Feed-forward ratio (SwiGLU hidden width ``int(2/3 * mlp_ratio * dim)``).
        qkv_bias: Bias of the QKV projection.
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True
    ) -> None:
        super().__init__()
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.mlp = SwiGLU(dim, int(2 / 3 * mlp_ratio * dim))
        self.adaLN_modulation = nn.Linear(dim, 6 * dim)

    def forward(self, x: Tensor, c: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x: Tokens, shape (B, N, D).
            c: Conditioning, shape (B, D).
            cos: RoPE cosines, shape (N, head_dim).
            sin: RoPE sines, shape (N, head_dim).

        Returns:
            Shape (B, N, D).
        """
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(F.silu(c)).chunk(
            6, dim=1
        )
        x = x + gate1.unsqueeze(1) * self.attn(_modulate(rms_norm(x), shift1, scale1), cos, sin)
        return x + gate2.unsqueeze(1) * self.mlp(_modulate(rms_norm(x), shift2, scale2))
