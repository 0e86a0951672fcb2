"""The fast path of inference: bfloat16 autocast with channels-last weights where bfloat16 is native, float32
elsewhere or when asked.

On a CPU with ``avx512_bf16`` / ``amx_bf16`` (or a CUDA GPU with bf16 units) a restoration runs about twice as
fast this way (``make bench``: the achieved GFLOP/s row), and the evaluation grid's PSNR moves by less than
0.01 dB (``tests/test_precision.py``). Where bfloat16 is only emulated it is many times slower than float32, so
``auto`` never picks it there. The condition weights are always computed in float32, and so are the first and
the last convolution (:data:`FLOAT32_LAYERS`): the image enters and leaves through them, and in bfloat16 the
input alone loses about one 8-bit step on bright pixels. Measured with the shipped model on the evaluation grid
(the embedded validation photographs, 192x192 crops): every layer in bfloat16 moves a setting's PSNR by up to
0.067 dB; with those two in float32, by at most 0.0042 dB. The global residual adds in float32.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "FLOAT32_LAYERS",
    "PRECISIONS",
    "FastPath",
    "native_bf16",
    "resolve_device",
    "resolve_inference_precision",
]

PRECISIONS = ("auto", "float32", "bf16")
FLOAT32_LAYERS = ("head", "tail")
"""The generator's layers that stay in float32 on the bfloat16 path: where the image enters and leaves."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when available; asking for CUDA without it is a ValueError."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available; use --device cpu or auto")
    return device


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no native-bf16 claim
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def native_bf16(device: str | torch.device = "cpu") -> tuple[bool, str]:
    """Whether bfloat16 runs natively on ``device`` (a CUDA GPU with bf16 units; a CPU with ``avx512_bf16`` or
    ``amx_bf16``), and why not when it does not."""
    if torch.device(device).type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
        return ok, "" if ok else "this GPU has no native bfloat16"
    if _cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return True, ""
    return False, "the CPU has no avx512_bf16 / amx_bf16: emulated bfloat16 is many times slower than float32"


def resolve_inference_precision(precision: str, device: str | torch.device) -> str:
    """``auto`` -> ``bf16`` where bfloat16 is native on ``device``, else ``float32``; the others as given."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device)[0] else "float32"
    return precision


class FastPath:
    """How one network runs inference: the resolved precision, its memory format and autocast context."""

    def __init__(self, precision: str = "auto", device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.precision = resolve_inference_precision(precision, self.device)

    @property
    def enabled(self) -> bool:
        return self.precision == "bf16"

    def prepare(self, net: nn.Module) -> nn.Module:
        """For the bf16 path: the network's 4-D weights channels-last, and its :data:`FLOAT32_LAYERS` run
        outside autocast (the instance's ``forward`` is replaced; its weights and state-dict keys stay as they
        are, so DNI blending and checkpoints see the same network). A no-op for float32."""
        if not self.enabled:
            return net
        for name in FLOAT32_LAYERS:
            layer = getattr(net, name, None)
            if isinstance(layer, nn.Module) and not getattr(layer, "_runs_in_float32", False):
                layer.forward = _in_float32(layer.forward, self.device.type)
                layer._runs_in_float32 = True
        return net.to(memory_format=torch.channels_last)

    def input(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.enabled else x

    def autocast(self) -> AbstractContextManager[object]:
        if not self.enabled:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def run(self, net: nn.Module, x: Tensor, *args: object, **kwargs: object) -> Tensor:
        """``net(x, ...)`` on this path; the result in float32, contiguous."""
        with self.autocast():
            out = net(self.input(x), *args, **kwargs)
        return out.float().contiguous()


def _in_float32(forward, device_type: str):  # noqa: ANN001, ANN202
    def run(x: Tensor, *args: object, **kwargs: object) -> Tensor:
        with torch.autocast(device_type, enabled=False):
            return forward(x.float(), *args, **kwargs)

    return run
