"""Applying a modulation weight, ``x + w * r``: a vector's weights ``(B, C, 1, 1)``, a condition map's ``(B, C, h, w)``,
or a map's weights not yet made (:class:`RowWeights`), which are made and applied a band of pixels at a time.

A map's weights at one point are as large as the feature map they modulate. Made whole, they are written to memory
and read back by the product; made in bands of two megabytes, each band is still in the cache when the product
reads it (docs/spatial.md, "Speed"). The result is the same bit for bit: each weight is the same three-term sum, and
the product is element-wise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BAND_BYTES", "RowWeights", "as_rows", "band_buffer", "may_reuse", "modulate"]

BAND_BYTES = 2 << 20
"""The size of one band of a map's weights (made, then applied, while it stays in the cache)."""


def modulate(x: Tensor, w: Tensor | RowWeights | None, r: Tensor) -> Tensor:
    """``x + w * r`` in one pass (``w`` None: ``x + r``)."""
    if w is None:
        return x + r
    if isinstance(w, RowWeights):
        return w.addcmul(x, r)
    return torch.addcmul(x, w, r)


def as_rows(plane: Tensor, dtype: torch.dtype) -> Tensor:
    """A map ``(B, D, h, w)`` as ``(B*h*w, D + 1)`` rows of its values and a 1 (the bias rides in the product)."""
    return F.pad(plane.permute(0, 2, 3, 1).reshape(-1, plane.shape[1]), (0, 1), value=1.0).to(dtype)


def may_reuse() -> bool:
    """Whether a forward pass may reuse buffers: nothing is kept for backward, and nothing records the calls."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)()
    return not (
        torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling() or exporting
    )


def _pixel_rows(t: Tensor) -> Tensor | None:
    """``t`` ``(B, C, h, w)`` as ``(B*h*w, C)`` rows without a copy, or None when it is not laid out channels-last."""
    rows = t.permute(0, 2, 3, 1)
    return rows.view(-1, t.shape[1]) if rows.is_contiguous() else None


class RowWeights:
    """One modulation point's weights under a condition map, not yet made: ``rows @ product`` is ``(B*h*w, C)``,
    which is ``(B, C, h, w)`` in channels-last layout.

    ``rows`` (:func:`as_rows`) and ``product`` (the linear's weight and bias, ``(D + 1, C)``) are in the precision
    the weights take; ``scratch`` (:func:`band_buffer`) holds one band of them and may be shared by the points of
    a pass that is done with each point before the next and keeps nothing for backward.
    """

    __slots__ = ("product", "rows", "scratch", "shape")

    def __init__(
        self, rows: Tensor, product: Tensor, shape: tuple[int, ...], scratch: Tensor | None = None
    ) -> None:
        self.rows, self.product, self.shape, self.scratch = rows, product, tuple(shape), scratch

    def make(self) -> Tensor:
        """The whole ``(B, C, h, w)`` weights (a new tensor, channels-last)."""
        b, c, h, w = self.shape
        return torch.mm(self.rows, self.product).view(b, h, w, c).permute(0, 3, 1, 2)

    def addcmul(self, x: Tensor, r: Tensor) -> Tensor:
        """``x + w * r`` for ``x`` and ``r`` of this point's shape, a band at a time when both are channels-last
        (otherwise, e.g. a cropped output, or without a scratch buffer, with the weights made whole)."""
        xs, rs = _pixel_rows(x), _pixel_rows(r)
        if (
            self.scratch is None
            or xs is None
            or rs is None
            or tuple(x.shape) != self.shape
            or x.shape != r.shape
        ):
            return torch.addcmul(x, self.make(), r)
        dtype = torch.promote_types(x.dtype, torch.promote_types(self.product.dtype, r.dtype))
        out = torch.empty(x.shape, dtype=dtype, device=x.device, memory_format=torch.channels_last)
        outs = _pixel_rows(out)
        n, channels = xs.shape
        step = max(1, self.scratch.numel() // channels)
        for i in range(0, n, step):
            j = min(n, i + step)
            w = torch.mm(
                self.rows[i:j], self.product, out=self.scratch[: (j - i) * channels].view(j - i, channels)
            )
            torch.addcmul(xs[i:j], w, rs[i:j], out=outs[i:j])
        return out


def band_buffer(channels: int, like: Tensor, dtype: torch.dtype) -> Tensor:
    """A scratch buffer for :class:`RowWeights` of up to ``channels`` channels: :data:`BAND_BYTES`, or one pixel's
    weights if that is more."""
    elements = max(BAND_BYTES // torch.empty((), dtype=dtype).element_size(), channels)
    return like.new_empty(elements, dtype=dtype)
