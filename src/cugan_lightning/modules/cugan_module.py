"""Stage 2: CUGAN — the CUnet generator against the condition-modulated (GFM) discriminator.

Manual optimisation, one discriminator step then one generator step per batch:
``L_D = BCE(D(gt, z), real) + BCE(D(G(lq, z).detach(), z), fake)`` and
``L_G = w_percep * L_percep + w_gan * L_GAN + w_pix * L_pix`` (paper: 1, 0.005, 0.01).

Options seen in the authors' released model code (which the paper does not mention; defaults follow the paper):
``update_order="g_first"`` (G steps first, against the not yet updated D, then D judges the output computed
before G's step), ``d_updates_per_g_update=N`` (G steps every N-th iteration, D every iteration),
``d_warmup_iterations=K`` (D alone for the first K iterations) and ``level_weighted_losses`` (per sample, with
``m = mean(z)``: G's GAN weight ``w_gan * (1 - 0.8 m)``, i.e. ``0.005 - 0.004 m`` at the paper's weight, and
D's fake loss times ``1.1 m``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..degradations import LevelCodec
from ..evaluation.metrics import build_validation_scorer
from ..losses import GANLoss, PerceptualLoss, PixelLoss
from .base import RestorationModule, mean_level

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
DEFAULT_WEIGHTS = {"percep": 1.0, "gan": 0.005, "pix": 0.01}


class CUGANModule(RestorationModule):
    """Trains ``net_g`` (CUnet with C_G) and ``net_d`` (discriminator with C_D) adversarially.

    ``init_from`` (see :class:`RestorationModule`) is the stage-1 checkpoint G and C_G start from.
    ``perceptual=None`` switches the perceptual term off (only with an explicit config value: docs/training.md).
    ``milestones`` of the schedulers are in iterations (batches). ``grad_clip`` clips each network's gradient
    norm inside the module, since Lightning refuses trainer-level clipping with manual optimisation.
    ``val_metrics`` (``lpips``, ``dists``) adds those scores per validation setting (``val/lpips/b2_n30``, ...);
    ``val_metrics_if_missing`` follows the perceptual loss's rule when their backbone files are missing.
    """

    stage = "cugan"
    optimizer_steps_per_iteration = 2

    def __init__(
        self,
        net_g: nn.Module,
        net_d: nn.Module,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        scheduler_g: SchedulerFactory | None = None,
        scheduler_d: SchedulerFactory | None = None,
        perceptual: PerceptualLoss | None = None,
        gan_loss: str = "vanilla",
        pixel_loss: str = "mse",
        loss_weights: Mapping[str, float] | None = None,
        init_from: str | None = None,
        codec: Mapping[str, Any] | LevelCodec | None = None,
        grad_clip: float | None = None,
        figure_setting: str = "b2_n30",
        log_figures: bool = True,
        nan_check_every: int = 1,
        val_metrics: Sequence[str] = (),
        val_metrics_if_missing: str = "error",
        update_order: str = "d_first",
        d_updates_per_g_update: int = 1,
        d_warmup_iterations: int = 0,
        level_weighted_losses: bool = False,
        channels_last: bool = False,
        compile: bool | str = False,  # noqa: A002 (the config key)
    ) -> None:
        if update_order not in ("d_first", "g_first"):
            raise ValueError(f"model.update_order must be 'd_first' or 'g_first', got {update_order!r}")
        if int(d_updates_per_g_update) < 1 or int(d_warmup_iterations) < 0:
            raise ValueError(
                f"model.d_updates_per_g_update must be >= 1 and model.d_warmup_iterations >= 0, got "
                f"{d_updates_per_g_update} and {d_warmup_iterations}"
            )
        weights = dict(DEFAULT_WEIGHTS, **(loss_weights or {}))
        unknown = set(weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown loss weights {sorted(unknown)}; use {sorted(DEFAULT_WEIGHTS)}")
        super().__init__(
            net_g, codec, init_from=init_from, figure_setting=figure_setting, log_figures=log_figures,
            nan_check_every=nan_check_every, channels_last=channels_last, compile=compile,
            val_scorer=build_validation_scorer(val_metrics, val_metrics_if_missing), other_networks=(net_d,),
        )  # fmt: skip
        self.automatic_optimization = False
        self.net_d = net_d
        self.update_order = update_order
        self.d_updates_per_g_update = int(d_updates_per_g_update)
        self.d_warmup_iterations = int(d_warmup_iterations)
        self.level_weighted_losses = bool(level_weighted_losses)
        self.optimizer_factories = (optimizer_g, optimizer_d)
        self.scheduler_factories = (scheduler_g, scheduler_d)
        self.perceptual = perceptual
        self.gan_loss = GANLoss(gan_loss)
        self.pixel_loss = PixelLoss(pixel_loss)
        self.loss_weights = weights
        self.grad_clip = grad_clip
        if perceptual is None:
            log.warning("perceptual term OFF: L_G = %.3g L_GAN + %.3g L_pix", weights["gan"], weights["pix"])

    # ------------------------------------------------------------------------------------------ training
    def _step(self, optimizer: Any, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.grad_clip:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
        optimizer.step()

    def discriminator_step(
        self, batch: Mapping[str, torch.Tensor], out: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One D update: real ``(gt, z)`` against restored ``(out.detach(), z)``, same z for both."""
        _, opt_d = self.optimizers()
        self.toggle_optimizer(opt_d)
        net_d = self.speed.forward("net_d", self.net_d)
        real_logits = net_d(batch["gt"], batch["z"])
        fake_logits = net_d(out.detach(), batch["z"])
        l_d_real = self.gan_loss(real_logits, real=True)
        fake_weight = 1.1 * mean_level(batch["z"]) if self.level_weighted_losses else None
        l_d_fake = self.gan_loss(fake_logits, real=False, weight=fake_weight)
        l_d = l_d_real + l_d_fake
        self.check_finite("train/l_d", l_d, self.iteration)
        self._step(opt_d, l_d)
        self.untoggle_optimizer(opt_d)
        return {
            "train/l_d_real": l_d_real.detach(),
            "train/l_d_fake": l_d_fake.detach(),
            "train/out_d_real": real_logits.detach().mean(),
            "train/out_d_fake": fake_logits.detach().mean(),
        }

    def generator_step(self, batch: Mapping[str, torch.Tensor], out: torch.Tensor) -> dict[str, torch.Tensor]:
        """One G update with the weighted perceptual, adversarial and pixel terms (D frozen meanwhile)."""
        opt_g, _ = self.optimizers()
        self.toggle_optimizer(opt_g)
        w = self.loss_weights
        l_g_pix = self.pixel_loss(out, batch["gt"])
        gan_weight = 1.0 - 0.8 * mean_level(batch["z"]) if self.level_weighted_losses else None
        l_g_gan = self.gan_loss(
            self.speed.forward("net_d", self.net_d)(out, batch["z"]),
            real=True,
            for_discriminator=False,
            weight=gan_weight,
        )
        l_g = w["pix"] * l_g_pix + w["gan"] * l_g_gan
        logs = {"train/l_g_pix": l_g_pix.detach(), "train/l_g_gan": l_g_gan.detach()}
        if self.perceptual is not None:
            l_g_percep = self.perceptual(out, batch["gt"])
            l_g = l_g + w["percep"] * l_g_percep
            logs["train/l_g_percep"] = l_g_percep.detach()
        self.check_finite("train/l_g", l_g, self.iteration)
        self._step(opt_g, l_g)
        self.untoggle_optimizer(opt_g)
        logs["train/l_g_total"] = l_g.detach()
        return logs

    def updates_generator(self, iteration: int) -> bool:
        """Whether G steps at ``iteration`` (D steps at every one)."""
        later = iteration - self.d_warmup_iterations
        return later >= 0 and later % self.d_updates_per_g_update == 0

    def optimizer_steps(self, iterations: int) -> int:
        """Optimizer steps (Lightning's max_steps) in ``iterations`` batches: one D step each, plus G's."""
        later = max(0, iterations - self.d_warmup_iterations)
        return iterations + -(-later // self.d_updates_per_g_update)

    def on_fit_start(self) -> None:
        self.speed.compile_for_fit(self, "net_g", "net_d")

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        batch = self.speed.format_batch(batch)
        out = self.speed.forward("net_g", self.net_g)(batch["lq"], batch["z"])
        update_g = self.updates_generator(self.iteration)
        logs: dict[str, torch.Tensor] = {}
        if update_g and self.update_order == "g_first":  # against the D of the previous iteration
            logs.update(self.generator_step(batch, out))
        logs.update(self.discriminator_step(batch, out))  # judges `out` as computed before any G step
        if update_g and self.update_order == "d_first":
            logs.update(self.generator_step(batch, out))
        schedulers = self.lr_schedulers()
        for scheduler in (
            schedulers if isinstance(schedulers, Sequence) else [schedulers] if schedulers else []
        ):
            scheduler.step()
        self.log_dict(logs, prog_bar=False)
        self.log("train/iteration", float(self.iteration), prog_bar=False)

    def configure_optimizers(self) -> Any:
        optimizers = [
            self.optimizer_factories[0](params=self.net_g.parameters()),
            self.optimizer_factories[1](params=self.net_d.parameters()),
        ]
        schedulers = [
            f(optimizer=o) for f, o in zip(self.scheduler_factories, optimizers, strict=True) if f is not None
        ]
        if not schedulers:
            return optimizers
        if len(schedulers) != 2:
            raise ValueError("give both scheduler_g and scheduler_d, or neither")
        return optimizers, schedulers

    # --------------------------------------------------------------------------------------- checkpoints
    def checkpoint_extras(self) -> dict[str, Any]:
        return {
            "discriminator": {
                "class": type(self.net_d).__name__,
                "config": dict(getattr(self.net_d, "config", {})),
            },
            "init_from": self.init_from,
            "perceptual": None
            if self.perceptual is None
            else {"random_weights": self.perceptual.random_weights},
        }
