"""CUnet: the modulated U-Net generator of CUGAN, with its condition network C_G.

Layout (docs/model.md; as in the released code), for ``S = len(channels)`` scales::

    f_0  = MRB x blocks[0] ( head(x) )                       full resolution
    f_s  = MRB x blocks[s] ( down_{s-1}(f_{s-1}) )           1 / 2**s, s = 1 .. S-1
    g    = f_{S-1}
    for s = S-1 .. 1:
        f_{s-1} = f_{s-1} + w_msf(z) * up_{s-1}( MRB x blocks[s] (g) );  g = f_{s-1}
    r    = tail( MRB x blocks[0] (g) )
    y    = x + w_out(z) * r

``z`` is a vector per image ``(B, D)`` or a map ``(B, D, H, W)`` (docs/model.md, "Spatial z"): each condition linear
is then applied per pixel, at its scale's resolution (the map padded like the image and area-averaged), so a
constant map gives the vector's result.

Module names (stable: checkpoints and DNI rely on them): ``head``, ``encoders.<s>.<j>``, ``downs.<s>``,
``decoders.<s>.<j>``, ``ups.<s>``, ``tail``, and every condition linear under ``cond.<name>``, so parameters
whose name starts with ``cond.`` are C_G and all others the base network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .modulation import RowWeights, as_rows, band_buffer, may_reuse, modulate

__all__ = [
    "COND_PREFIX",
    "CUnet",
    "ModulatedResidualBlock",
    "count_parameters",
    "is_cond_parameter",
    "kaiming_init_",
]

COND_PREFIX = "cond."
"""Prefix of every condition-network parameter (C_G or C_D) in a state dict or ``named_parameters()``."""


def is_cond_parameter(name: str) -> bool:
    """True for a parameter/state-dict name that belongs to a condition network (prefix ``cond.``)."""
    return name.startswith(COND_PREFIX)


def count_parameters(module: nn.Module) -> dict[str, int]:
    """Parameter counts split by the ``cond.`` prefix: ``{"total", "base", "cond"}`` (base: all but the condition
    network)."""
    cond = sum(p.numel() for n, p in module.named_parameters() if is_cond_parameter(n))
    total = sum(p.numel() for p in module.parameters())
    return {"total": total, "base": total - cond, "cond": cond}


def kaiming_init_(module: nn.Module, scale: float = 0.1) -> None:
    """Kaiming-normal (fan_in) times ``scale``, bias 0, for every conv / transposed conv / linear in ``module``
    (0.1: the released code's init; every condition linear then outputs exactly 0 at z = 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            m.weight.data.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ModulatedResidualBlock(nn.Module):
    """MRB: ``x + w * conv3x3(relu(conv3x3(x)))`` on ``(B, C, H, W)``; ``w`` is ``(B, C, 1, 1)``, a condition
    map's ``(B, C, H, W)`` (or those not yet made, :class:`~.modulation.RowWeights`), or None (= 1).

    The modulation weight comes from outside (the condition network lives under ``CUnet.cond``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=True)

    def forward(self, x: Tensor, w: Tensor | None = None) -> Tensor:
        res = self.conv2(F.relu(self.conv1(x)))
        # one fused pass (x + w * res) instead of two: on the bf16 path these element-wise passes cost as much as
        # the convolutions (make bench)
        return modulate(x, w, res)


def _as_int_tuple(value: int | Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    try:
        out = tuple(int(v) for v in value)
    except TypeError as err:
        raise ValueError(f"{name} must be a sequence of ints, got {value!r}") from err
    if any(o != v for o, v in zip(out, value, strict=True)):
        raise ValueError(f"{name} must contain ints, got {value!r}")
    return out


class CUnet(nn.Module):
    """Modulated U-Net generator with its condition network (paper section 3; docs/model.md).

    Args:
        in_channels: image channels (input and output).
        cond_dim: length of the condition vector ``z`` (2: blur, noise).
        channels: feature width per scale; ``len(channels)`` is the number of scales (1 to 4).
        blocks: modulated residual blocks per scale on each side (left and right), same length as ``channels``.
        conditional: False gives the "Unet" baseline: no condition layers, every modulation weight fixed to 1.

    ``forward(x, z)`` maps ``x`` ``(B, in_channels, H, W)`` in [0, 1] and ``z`` ``(B, cond_dim)`` to the
    restored ``(B, in_channels, H, W)`` (not clamped). Any ``H, W`` works: the input is padded to a multiple of
    ``2 ** (scales - 1)`` and the output cropped back. At init the network is exactly the identity at z = 0.
    """

    def __init__(
        self,
        in_channels: int = 3,
        cond_dim: int = 2,
        channels: Sequence[int] = (64, 128, 256),
        blocks: Sequence[int] = (2, 2, 2),
        conditional: bool = True,
    ) -> None:
        super().__init__()
        channels = _as_int_tuple(channels, "channels")
        blocks = _as_int_tuple(blocks, "blocks")
        if not 1 <= len(channels) <= 4:
            raise ValueError(f"channels must give 1 to 4 scales, got {len(channels)}: {list(channels)}")
        if len(blocks) != len(channels):
            raise ValueError(
                f"blocks must have one entry per scale (len(channels) = {len(channels)}), "
                f"got blocks={list(blocks)}"
            )
        if any(c < 1 for c in channels) or any(b < 0 for b in blocks):
            raise ValueError(
                f"channels must be >= 1 and blocks >= 0, got {list(channels)} and {list(blocks)}"
            )
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if conditional and cond_dim < 1:
            raise ValueError(f"cond_dim must be >= 1 for a conditional CUnet, got {cond_dim}")

        self.in_channels = int(in_channels)
        self.cond_dim = int(cond_dim)
        self.channels = channels
        self.blocks = blocks
        self.conditional = bool(conditional)
        self.num_scales = len(channels)

        self.head = nn.Conv2d(in_channels, channels[0], 3, padding=1, bias=True)
        self.encoders = nn.ModuleList(
            nn.ModuleList(ModulatedResidualBlock(c) for _ in range(n))
            for c, n in zip(channels, blocks, strict=True)
        )
        self.downs = nn.ModuleList(
            nn.Conv2d(channels[s], channels[s + 1], 2, stride=2, bias=True)
            for s in range(self.num_scales - 1)
        )
        self.decoders = nn.ModuleList(
            nn.ModuleList(ModulatedResidualBlock(c) for _ in range(n))
            for c, n in zip(channels, blocks, strict=True)
        )
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(channels[s + 1], channels[s], 2, stride=2, bias=True)
            for s in range(self.num_scales - 1)
        )
        self.tail = nn.Conv2d(channels[0], in_channels, 3, padding=1, bias=True)

        # One independent linear per modulation point, in the order forward() consumes them. The keys double
        # as the state-dict names (cond.enc0_0.weight, ...), so keep them stable.
        widths: dict[str, int] = {}
        for s in range(self.num_scales):
            for j in range(blocks[s]):
                widths[f"enc{s}_{j}"] = channels[s]
        for s in reversed(range(self.num_scales)):
            for j in range(blocks[s]):
                widths[f"dec{s}_{j}"] = channels[s]
            if s > 0:
                widths[f"msf{s - 1}"] = channels[s - 1]  # fusion of the upsampled scale s into scale s-1
        widths["out"] = in_channels
        self.cond_names: tuple[str, ...] = tuple(widths) if self.conditional else ()
        # the scale each modulation point works at; -1: the output, at the unpadded full size
        self._cond_scales = tuple(_scale_of(name) for name in self.cond_names)
        self.cond_channels: tuple[int, ...] = tuple(widths.values()) if self.conditional else ()
        self.cond = (
            nn.ModuleDict({k: nn.Linear(cond_dim, c, bias=True) for k, c in widths.items()})
            if self.conditional
            else None
        )

        kaiming_init_(self, 0.1)

    @property
    def config(self) -> dict:
        """Constructor kwargs as plain Python types: ``CUnet(**net.config)`` rebuilds the architecture."""
        return {
            "in_channels": self.in_channels,
            "cond_dim": self.cond_dim,
            "channels": list(self.channels),
            "blocks": list(self.blocks),
            "conditional": self.conditional,
        }

    @property
    def pad_multiple(self) -> int:
        """Height and width are padded internally to a multiple of this (one halving per extra scale)."""
        return 2 ** (self.num_scales - 1)

    def _check_z(self, z: Tensor | None, batch: int | None) -> Tensor:
        shape = f"(B, {self.cond_dim}) or a map (B, {self.cond_dim}, H, W)"
        if z is None:
            raise ValueError(f"z is required for a conditional CUnet: pass a {shape} tensor")
        if not isinstance(z, Tensor):
            raise TypeError(f"z must be a torch.Tensor of shape {shape}, got {type(z).__name__}")
        if (
            z.dim() not in (2, 4)
            or z.shape[1] != self.cond_dim
            or (batch is not None and z.shape[0] != batch)
            or (z.dim() == 4 and min(z.shape[-2:]) < 1)
        ):
            b = batch if batch is not None else "B"
            raise ValueError(
                f"z must have shape ({b}, {self.cond_dim}) or ({b}, {self.cond_dim}, H, W), got {tuple(z.shape)}"
            )
        return z

    def weight_sizes(self, height: int, width: int) -> tuple[tuple[int, int], ...]:
        """``(h, w)`` of each modulation point's feature map (order of ``cond_names``) for an image of that size:
        the size a condition map's weights take there."""
        m = self.pad_multiple
        padded = (height + (-height) % m, width + (-width) % m)
        return tuple(
            (height, width) if s < 0 else (padded[0] >> s, padded[1] >> s) for s in self._cond_scales
        )

    def condition(
        self, z: Tensor, size: tuple[int, int] | None = None, *, channels_last: bool = False
    ) -> tuple[Tensor, ...]:
        """All modulation weights for ``z``: one tensor per ``cond_names`` entry.

        A vector ``z`` ``(B, cond_dim)`` gives ``(B, C, 1, 1)`` weights. A map ``(B, cond_dim, h, w)`` gives
        ``(B, C, h_s, w_s)`` weights at each point's resolution (:meth:`weight_sizes`) for an image of ``size``
        (default: the map's own size; a map of another size is resized to it bilinearly first). Feed the result
        to ``forward(x, weights=...)`` to skip the condition network, e.g. to blend or edit weights. An
        unconditional network has nothing to modulate and returns ``()``. ``channels_last``: a map's weights are
        laid out channels-last (for a channels-last network: no copy to convert them).
        """
        if self.cond is None:
            return ()
        z = self._check_z(z, None)
        if z.dim() == 2:
            return tuple(layer(z)[:, :, None, None] for layer in self.cond.values())
        return tuple(self._map_weights(z, size, channels_last))

    def _map_weights(
        self, z: Tensor, size: tuple[int, int] | None, channels_last: bool, reuse: bool = False
    ) -> Iterator[Tensor | RowWeights]:
        """A map's weights one point at a time, in the order ``forward`` uses them, so that a restoration holds
        one point's weights at a time rather than all of them. The map is resized and pooled in float32; the
        weights come out in the caller's precision, as the vector path's linear layers give them (under bfloat16
        autocast, bfloat16: float32 weights would make every modulated feature map float32). ``reuse`` (a caller
        done with each point's weights before it asks for the next, nothing saved for backward; channels-last):
        on the CPU, each point's weights not yet made (:class:`~.modulation.RowWeights`), made and applied a band
        at a time in one shared buffer."""
        device = z.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else torch.float32
        size = tuple(z.shape[-2:]) if size is None else (int(size[0]), int(size[1]))
        with torch.autocast(device, enabled=False):
            z = z.float()
            if tuple(z.shape[-2:]) != size:
                z = F.interpolate(z, size=size, mode="bilinear", align_corners=False)
            # the map at each scale: padded like the image, then area-averaged once per halving (exact: the
            # padded size is a multiple of every halving); the unpadded map last, for the output
            planes = [self._pad(z)]
            for _ in range(1, self.num_scales):
                planes.append(F.avg_pool2d(planes[-1], 2))
            planes.append(z)
            # channels-last: each plane as rows, cast once (the unpadded map's are the full scale's when nothing
            # was padded); one matrix product per point gives its (B, h, w, C) weights, which are (B, C, h, w)
            # with channels-last strides (no layout copy)
            rows: list[Tensor] = []
            for p in planes if channels_last else []:
                rows.append(rows[0] if rows and p is planes[0] else as_rows(p, dtype))
        # bands on the CPU only: an accelerator would pay a launch per band, and its memory is fast
        banded = reuse and channels_last and device == "cpu"
        scratch = band_buffer(max(self.cond_channels), z, dtype) if banded else None
        for layer, s in zip(self.cond.values(), self._cond_scales, strict=True):
            plane = planes[s]  # s = -1: the unpadded map
            with torch.autocast(device, enabled=False):  # left before yielding: the caller's own mode
                if channels_last:
                    product = torch.cat([layer.weight.t(), layer.bias[None]]).to(dtype)
                    shape = (plane.shape[0], layer.out_features, *plane.shape[2:])
                    weight = RowWeights(rows[s], product, shape, scratch)
                    weight = weight if scratch is not None else weight.make()
                else:
                    weight = F.conv2d(plane, layer.weight[:, :, None, None], layer.bias).to(dtype)
            yield weight

    def _check_weights(
        self, weights: Sequence[Tensor], batch: int, height: int, width: int
    ) -> tuple[Tensor, ...]:
        weights = tuple(weights)
        if len(weights) != len(self.cond_channels):
            raise ValueError(
                f"weights must hold {len(self.cond_channels)} tensors (one per cond layer, see cond_names), "
                f"got {len(weights)}"
            )
        sizes = self.weight_sizes(height, width)
        for name, c, size, w in zip(self.cond_names, self.cond_channels, sizes, weights, strict=True):
            if (
                w.dim() != 4
                or w.shape[1] != c
                or tuple(w.shape[-2:]) not in ((1, 1), size)
                or w.shape[0] not in (1, batch)
            ):
                raise ValueError(
                    f"weights[{name!r}] must have shape ({batch}, {c}, 1, 1) or ({batch}, {c}, {size[0]}, "
                    f"{size[1]}), got {tuple(w.shape)}"
                )
        return weights

    def _pad(self, x: Tensor) -> Tensor:
        m = self.pad_multiple
        pad_h, pad_w = (-x.shape[-2]) % m, (-x.shape[-1]) % m
        if pad_h == 0 and pad_w == 0:
            return x
        # reflect needs pad < size; tiny images fall back to replicating the border
        mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
        return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)

    def forward(
        self, x: Tensor, z: Tensor | None = None, *, weights: Sequence[Tensor] | None = None
    ) -> Tensor:
        """Restore ``x`` ``(B, in_channels, H, W)`` in [0, 1] under ``z``: ``(B, cond_dim)``, or a map
        ``(B, cond_dim, h, w)`` (resized to ``H, W`` when it differs).

        ``weights`` (from :meth:`condition`) replaces ``z``. An unconditional network ignores ``z``.
        Returns ``(B, in_channels, H, W)``.
        """
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a 4-D tensor (B, C, H, W), got {shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels, got shape {tuple(x.shape)}")
        batch, height, width = x.shape[0], x.shape[-2], x.shape[-1]

        if not self.conditional:
            if weights:
                raise ValueError("weights were given but this CUnet is unconditional (conditional=False)")
            ws: Sequence[Tensor | None] = [None] * (2 * sum(self.blocks) + self.num_scales)
        elif weights is not None:
            ws = self._check_weights(weights, batch, height, width)
        else:
            z = self._check_z(z, batch)
            if z.dim() == 2:
                ws = self.condition(z)
            else:  # a map: each point's weights made when it is used
                channels_last = x.is_contiguous(memory_format=torch.channels_last)
                ws = self._map_weights(z, (height, width), channels_last, reuse=may_reuse())
        w_iter = iter(ws)

        feat = self.head(self._pad(x))
        skips: list[Tensor] = []
        for s in range(self.num_scales):
            if s > 0:
                feat = self.downs[s - 1](feat)
            for block in self.encoders[s]:
                feat = block(feat, next(w_iter))
            skips.append(feat)

        for s in reversed(range(self.num_scales)):
            for block in self.decoders[s]:
                feat = block(feat, next(w_iter))
            if s > 0:
                up = self.ups[s - 1](feat)
                w = next(w_iter)
                feat = modulate(skips[s - 1], w, up)

        residual = self.tail(feat)[..., :height, :width]
        w_out = next(w_iter)
        # add to the unpadded input: at z = 0 (w_out == 0) the output is then exactly x
        return modulate(x, w_out, residual)


def _scale_of(name: str) -> int:
    """The scale a modulation point works at, from its name: ``enc<s>_<j>`` / ``dec<s>_<j>`` at ``s``,
    ``msf<s>`` at ``s``, ``out`` at -1 (the output, unpadded)."""
    if name == "out":
        return -1
    return int(re.match(r"(?:enc|dec|msf)(\d+)", name)[1])
