"""The LightningDataModule: ground-truth patches from the CPU, degradations on the training device."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Subset

from ..degradations import (
    PAPER_SETTINGS,
    LevelCodec,
    LevelSampler,
    SpatialLevels,
    encode_map,
    make_generator,
)
from ..degradations.factors import degrade_levels, lookup
from .datasets import EvalGridDataset, ImageSource, IterationBatchSampler, TrainPatchDataset
from .embedded import load_embedded

log = logging.getLogger(__name__)


def _image_source(
    folder: str | None, split: str, config_key: str, cache: bool, on_bad_file: str, channels: int = 3
) -> ImageSource:
    if folder in (None, ""):
        return ImageSource(arrays=load_embedded(split), channels=channels)
    source = ImageSource(
        folder, cache=cache, config_key=config_key, on_bad_file=on_bad_file, channels=channels
    )
    source.check()
    return source


class RestorationDataModule(L.LightningDataModule):
    """Training patches degraded on the device with random levels; validation / test on the fixed grid.

    Train batches arrive from the loader as ``{"gt"}`` and leave ``on_after_batch_transfer`` as ``{"lq", "gt",
    "z", "blur_sigma", "noise_sigma"}`` (and ``"jpeg_quality"`` or ``"<factor>_level"`` for other factors), all on the training
    device; JPEG goes through the device codec that follows libjpeg, evaluation inputs through libjpeg itself. The levels of global batch ``k`` on rank
    ``r`` are drawn from a generator seeded with (seed, k, r), never carried along, so a resumed run and every
    DDP rank draw exactly what an uninterrupted run would. Folders left empty fall back to the embedded demo
    photographs (``train`` / ``val`` split); a test folder left empty reuses the validation images.

    ``channels``: 3 (RGB) or 1 (gray: colour files are converted to their BT.601 luma, said once in the log).
    ``bits``: the depth the degradation's storage step quantises to, 8 or 16 (16-bit data).
    """

    def __init__(
        self,
        train_dir: str | None = None,
        val_dir: str | None = None,
        test_dir: str | None = None,
        sampler: LevelSampler | None = None,
        spatial: SpatialLevels | None = None,
        codec: Mapping[str, Any] | LevelCodec | None = None,
        quantize: bool = True,
        eval_settings: Sequence[Sequence[float]] = PAPER_SETTINGS,
        test_settings: Sequence[Sequence[float]] | None = None,
        patch_size: int = 64,
        batch_size: int = 16,
        batches_per_epoch: int = 1000,
        val_crop: int | None = None,
        val_batch_size: int = 1,
        num_workers: int = 4,
        pin_memory: bool = True,
        cache_images: bool = True,
        on_bad_file: str = "skip",
        seed: int = 0,
        channels: int = 3,
        bits: int = 8,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 (gray) or 3 (RGB), got {channels!r}")
        if bits not in (8, 16):
            raise ValueError(f"degradation.bits must be 8 or 16, got {bits!r}")
        self.channels, self.bits = channels, bits
        if channels == 1 and "jpeg" in LevelCodec.coerce(codec).names:
            raise ValueError(
                "data.channels=1 with the jpeg factor: the training device's JPEG codec reads RGB only; train gray "
                "models on blur and noise (degradation=default)"
            )
        self.train_dir, self.val_dir, self.test_dir = train_dir, val_dir, test_dir
        self.sampler = sampler if sampler is not None else LevelSampler()
        self.spatial = spatial if spatial is not None and spatial.p > 0 else None
        self.codec = LevelCodec.coerce(codec)
        if tuple(self.codec.names) != self.sampler.factors:
            raise ValueError(
                f"degradation.codec.names {list(self.codec.names)} and degradation.sampler.factors "
                f"{list(self.sampler.factors)} must name the same factors in the same order"
            )
        # every level the sampler can draw must be one the codec can encode
        for name, top in self.sampler.maxima().items():
            self.codec.encode({name: top})
        self.factors = self.sampler.factor_objects()
        self.quantize = quantize
        self.eval_settings = [tuple(map(float, s)) for s in eval_settings]
        self.test_settings = [tuple(map(float, s)) for s in (test_settings or eval_settings)]
        for key, value, low in (
            ("patch_size", patch_size, 4),
            ("batch_size", batch_size, 1),
            ("batches_per_epoch", batches_per_epoch, 1),
            ("val_batch_size", val_batch_size, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"data.{key} must be a whole number >= {low}, got {value!r}")
        if patch_size % 4:
            raise ValueError(
                f"data.patch_size must be a multiple of 4 (the network halves it twice), got {patch_size}"
            )
        if val_crop is not None and (
            isinstance(val_crop, bool) or not isinstance(val_crop, int) or val_crop < 4
        ):
            raise ValueError(f"data.val_crop must be null or a whole number >= 4, got {val_crop!r}")
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.val_crop = val_crop
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.cache_images = cache_images
        if on_bad_file not in ("skip", "error"):
            raise ValueError(f"data.on_bad_file must be 'skip' or 'error', got {on_bad_file!r}")
        self.on_bad_file = on_bad_file
        self.seed = seed
        self.train_batches_seen = 0  # global batch counter, saved in checkpoints
        self.train_set: TrainPatchDataset | None = None
        self.val_set: EvalGridDataset | None = None
        self.test_set: EvalGridDataset | None = None

    # ----------------------------------------------------------------------------------------------- setup
    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            source = _image_source(
                self.train_dir, "train", "data.train_dir", self.cache_images, self.on_bad_file, self.channels
            )
            self._check_patch_size(source)
            self.train_set = TrainPatchDataset(source, self.patch_size, seed=self.seed)
        if stage in (None, "fit", "validate") and self.val_set is None:
            source = _image_source(
                self.val_dir, "val", "data.val_dir", True, "error", self.channels
            )  # scores cover every image
            self.val_set = EvalGridDataset(
                source, self.eval_settings, self.codec, self.seed, self.val_crop, self.quantize, self.bits
            )
        if stage in (None, "test") and self.test_set is None:
            if self.test_dir is None and self.val_set is not None:  # the validation images, read once
                source = self.val_set.source
            else:
                folder, key = (
                    (self.test_dir, "data.test_dir") if self.test_dir else (self.val_dir, "data.val_dir")
                )
                source = _image_source(folder, "val", key, True, "error", self.channels)
            self.test_set = EvalGridDataset(
                source, self.test_settings, self.codec, self.seed, self.val_crop, self.quantize, self.bits
            )

    def _check_patch_size(self, source: ImageSource) -> None:
        """Images smaller than the patch are used whole (mirrored up to it, so batches keep their shape) and
        named in the log; a patch larger than every image is an error naming the key."""
        small = [
            (name, size)
            for name, size in zip(source.names, source.sizes, strict=True)
            if min(size) < self.patch_size
        ]
        if small and len(small) == len(source):
            largest = max(source.sizes, key=lambda s: min(s))
            raise ValueError(
                f"data.patch_size {self.patch_size} is larger than every training image (the largest is "
                f"{largest[1]}x{largest[0]}); use data.patch_size of at most {min(largest) // 4 * 4}"
            )
        for name, (height, width) in small:
            log.warning(
                "%s is %dx%d, smaller than the %d-pixel patch: used whole, mirrored up to the patch",
                name, width, height, self.patch_size,
            )  # fmt: skip

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup('fit') first"
        rank, world = self._rank_world()
        batch_sampler = IterationBatchSampler(
            self.batch_size, self.batches_per_epoch, lambda: self.train_batches_seen, rank, world
        )
        return DataLoader(
            self.train_set,
            batch_sampler=batch_sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def _eval_loader(self, dataset: EvalGridDataset | None) -> DataLoader:
        assert dataset is not None, "call setup() first"
        # Each rank scores every world-th item of the grid (no padding, no item twice); the metrics are sums
        # synchronised across ranks. Items are cached and precomputed: the main process serves them.
        rank, world = self._rank_world()
        share = dataset if world == 1 else Subset(dataset, range(rank, len(dataset), world))
        return DataLoader(share, batch_size=self.val_batch_size, shuffle=False, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    # ------------------------------------------------------------------------------ device-side degradation
    def degrade_train_batch(
        self, gt: torch.Tensor, batch_index: int, rank: int = 0
    ) -> dict[str, torch.Tensor]:
        """Degrade global training batch ``batch_index`` of ``rank``: ``gt`` ``(B, C, P, P)`` on any device."""
        level_gen = make_generator("train-levels", self.seed, batch_index, rank)
        levels = self.sampler.sample_levels(gt.shape[0], level_gen, device=gt.device)
        noise_gen = make_generator("train-noise", self.seed, batch_index, rank, device=gt.device)
        applied = levels
        if self.spatial is not None:  # level maps: z becomes a condition map (B, D, P, P)
            spatial_gen = make_generator("train-spatial", self.seed, batch_index, rank)
            applied = self.spatial.sample_maps(
                levels, tuple(gt.shape[-2:]), self.sampler.maxima(), spatial_gen
            )
            z = encode_map(self.codec, applied, validate=False)
        else:
            z = self.codec.encode(levels, validate=False)
        lq = degrade_levels(
            gt,
            applied,
            noise_gen,
            quantize_values=self.quantize,
            jpeg_codec="device",
            factors=self.factors,
            bits=self.bits,
        )
        batch = {"lq": lq, "gt": gt, "z": z.to(device=gt.device, dtype=gt.dtype)}
        batch.update({self.factors[name].batch_key: values for name, values in levels.items()})
        for name in ("blur", "noise"):  # always there (logged): 0 for a model without the factor
            if name not in levels:
                batch[lookup(name).batch_key] = torch.zeros(gt.shape[0], device=gt.device)
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and "lq" not in batch:  # a training batch: ground truth only
            rank, _ = self._rank_world()
            batch = self.degrade_train_batch(batch["gt"], self.train_batches_seen, rank)
            self.train_batches_seen += 1
        return batch

    # ------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {"train_batches_seen": self.train_batches_seen, "seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train_batches_seen = int(state_dict.get("train_batches_seen", 0))
