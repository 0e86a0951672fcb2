"""Speed options of the training modules: ``model.channels_last`` and ``model.compile``.

``channels_last`` stores the networks' weights and the training batches in NHWC order, which the GPU's tensor
cores and oneDNN on the CPU prefer for convolutions. ``compile`` runs the *training* forward (and so backward)
passes of G and D through ``torch.compile``; validation, checkpoints and every saved file keep using the plain
modules (the parameters are shared, the state-dict keys unchanged). The compiled pass is tried once, on the
training shape, when fitting starts, without changing any buffer or gradient; where it cannot compile (no C++
compiler, an unsupported backend, ...) the log says why in one line and training continues eagerly.

Mixed precision is the trainer's: ``trainer.precision`` (``auto`` in the GPU presets and ``experiment=cpu_hour``:
``bf16-mixed`` where bfloat16 is native, else ``32-true``; see :func:`resolve_precision`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..inference.precision import native_bf16

__all__ = ["COMPILE_MODES", "TrainingSpeed", "check_compile", "native_bf16", "resolve_precision"]

log = logging.getLogger(__name__)

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_compile(value: Any) -> str | None:
    """``model.compile``: false / null (eager), true (mode ``default``) or a ``torch.compile`` mode name."""
    if value is None or value is False:
        return None
    if value is True:
        return "default"
    if isinstance(value, str) and value in COMPILE_MODES:
        return value
    raise ValueError(
        f"model.compile must be false, true or a torch.compile mode ({', '.join(COMPILE_MODES)}), got {value!r}"
    )


def resolve_precision(precision: Any, accelerator: str | None) -> str:
    """``trainer.precision=auto``: ``bf16-mixed`` where bfloat16 is native (a CUDA GPU with bf16 units, or a CPU
    with ``avx512_bf16`` / ``amx_bf16``: 1.3x faster training steps there, 1.8x with ``model.channels_last``; see
    benchmarks/README.md), else ``32-true`` (emulated bfloat16 is many times slower); other values are kept."""
    if str(precision) != "auto":
        return str(precision)
    on_gpu = accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    return "bf16-mixed" if native_bf16("cuda" if on_gpu else "cpu")[0] else "32-true"


class TrainingSpeed:
    """The speed options of one module: which memory format its training tensors use and which callable runs
    each network's training forward (the module itself, or its compiled twin)."""

    def __init__(self, channels_last: bool = False, compile: Any = False) -> None:  # noqa: A002 (config name)
        if not isinstance(channels_last, bool):
            raise ValueError(f"model.channels_last must be true or false, got {channels_last!r}")
        self.channels_last = channels_last
        self.compile_mode = check_compile(compile)
        self._forwards: dict[str, Callable[..., Tensor]] = {}
        self.compiled: dict[str, bool] = {}

    # ---------------------------------------------------------------------------------------- memory format
    def format_networks(self, *nets: nn.Module | None) -> None:
        """Store the networks' 4-D weights channels-last (before the trainer moves them: ``.to`` keeps it)."""
        if self.channels_last:
            for net in nets:
                if net is not None:
                    net.to(memory_format=torch.channels_last)

    def format_batch(self, batch: Mapping[str, Any]) -> Mapping[str, Any]:
        """The training batch with its images in the module's memory format (the batch itself, not a copy,
        without channels_last)."""
        if not self.channels_last:
            return batch
        return {
            key: value.contiguous(memory_format=torch.channels_last)
            if isinstance(value, Tensor) and value.dim() == 4
            else value
            for key, value in batch.items()
        }

    # -------------------------------------------------------------------------------------------- compile
    def forward(self, name: str, net: nn.Module) -> Callable[..., Tensor]:
        """The callable that runs ``net``'s training forward pass."""
        return self._forwards.get(name, net)

    def compile_for_fit(self, module: Any, *names: str) -> None:
        """At ``on_fit_start``: compile ``module``'s networks ``names`` and try each on a zero batch of the
        training shape (the data module's batch and patch size), under the trainer's precision."""
        if self.compile_mode is None:
            return
        trainer = module.trainer
        data = trainer.datamodule
        batch, patch = getattr(data, "batch_size", 2), getattr(data, "patch_size", 64)
        channels = getattr(data, "channels", 3)
        image = torch.zeros(batch, channels, patch, patch, device=module.device)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        z = torch.zeros(batch, module.codec.cond_dim, device=module.device)
        with trainer.precision_plugin.train_step_context():
            self.compile_networks({name: (getattr(module, name), (image, z)) for name in names})

    def compile_networks(self, nets: Mapping[str, tuple[nn.Module, tuple[Tensor, ...]]]) -> None:
        """Compile each ``name: (network, example inputs)`` and try it once on those inputs (forward and
        backward), leaving the network's buffers and gradients as they were; a failure leaves it eager."""
        if self.compile_mode is None:
            return
        for name, (net, example) in nets.items():
            self.compiled[name] = False
            try:
                compiled = torch.compile(net, mode=self.compile_mode)
                _try_once(net, compiled, example)
            except Exception as err:  # noqa: BLE001 - any compiler failure means: train eagerly, say why
                reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
                log.warning(
                    "model.compile: torch.compile (mode %s) of %s failed (%s%s); training it eagerly",
                    self.compile_mode, name, type(err).__name__, f": {reason[:200]}" if reason else "",
                )  # fmt: skip
                continue
            self._forwards[name] = compiled
            self.compiled[name] = True
            log.info("model.compile: %s compiled (mode %s)", name, self.compile_mode)


def _try_once(net: nn.Module, compiled: Callable[..., Tensor], example: tuple[Tensor, ...]) -> None:
    buffers = {name: value.detach().clone() for name, value in net.named_buffers()}
    grads = {name: p.grad for name, p in net.named_parameters()}
    try:
        out = compiled(*example)
        out.float().mean().backward()
    finally:
        with torch.no_grad():
            for name, value in net.named_buffers():
                value.copy_(buffers[name])
        for name, p in net.named_parameters():
            p.grad = grads[name]
