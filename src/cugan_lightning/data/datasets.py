"""Datasets: random ground-truth patches for training, the fixed degradation grid for evaluation.

Training items are a pure function of (seed, virtual index): which image, where to crop, how to flip and rotate
all come from a generator seeded with that pair. A run that resumes, or runs on another rank, therefore reads
exactly the patches an uninterrupted single run would; no worker or global random state is involved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..degradations import LevelCodec, degrade_fixed, make_generator, setting_levels, setting_name
from .io import list_images, read_image_array, to_float


class ImageSource:
    """Images by index, from a folder (read on demand, optionally cached) or from arrays in memory."""

    def __init__(
        self,
        folder: str | Path | None = None,
        arrays: Sequence[tuple[str, np.ndarray]] | None = None,
        *,
        cache: bool = True,
        config_key: str | None = None,
    ) -> None:
        if (folder is None) == (arrays is None):
            raise ValueError("give exactly one of `folder` or `arrays`")
        self._cache: dict[int, np.ndarray] = {}
        self.cache = cache
        if arrays is not None:
            self.paths: list[Path] | None = None
            self.names = [name for name, _ in arrays]
            self._cache = {i: array for i, (_, array) in enumerate(arrays)}
            self.cache = True
        else:
            self.paths = list_images(folder, config_key=config_key)
            self.names = [p.stem for p in self.paths]

    def __len__(self) -> int:
        return len(self.names)

    def preload(self, threads: int = 8) -> None:
        """Decode every image now, in a thread pool (image decoding releases the GIL).

        Called in the main process before the dataloader starts its workers: forked workers then share the
        decoded pages instead of each decoding (or caching) its own copy.
        """
        missing = [i for i in range(len(self)) if i not in self._cache]
        if not missing or not self.cache:
            return
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for index, array in zip(missing, pool.map(self._read, missing), strict=True):
                self._cache[index] = array

    def _read(self, index: int) -> np.ndarray:
        assert self.paths is not None
        return read_image_array(self.paths[index])

    def get(self, index: int) -> np.ndarray:
        """Image ``index`` as an integer RGB array ``(H, W, 3)`` (uint8 or uint16)."""
        array = self._cache.get(index)
        if array is None:
            array = self._read(index)
            if self.cache:
                self._cache[index] = array
        return array


def _crop_or_pad(array: np.ndarray, size: int, top: int, left: int) -> np.ndarray:
    height, width = array.shape[:2]
    if height < size or width < size:  # small images are mirrored up to the patch size
        pad_h, pad_w = max(0, size - height), max(0, size - width)
        array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
    return array[top : top + size, left : left + size]


class TrainPatchDataset(Dataset):
    """Random ground-truth patches ``{"gt": (3, P, P)}`` in [0, 1] with random flips and 90-degree rotations.

    ``length`` is virtual: item ``i`` is defined for any non-negative ``i`` and depends only on (seed, i).
    """

    def __init__(
        self, source: ImageSource, patch_size: int = 64, seed: int = 0, length: int = 1 << 62
    ) -> None:
        if patch_size < 4 or patch_size % 4:
            raise ValueError(f"patch_size must be a positive multiple of 4, got {patch_size}")
        self.source = source
        self.patch_size = patch_size
        self.seed = seed
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        gen = make_generator("train-patch", self.seed, int(index))
        image_index = int(torch.randint(len(self.source), (1,), generator=gen))
        array = self.source.get(image_index)
        height, width = array.shape[:2]
        top = int(torch.randint(max(1, height - self.patch_size + 1), (1,), generator=gen))
        left = int(torch.randint(max(1, width - self.patch_size + 1), (1,), generator=gen))
        flip = bool(torch.randint(2, (1,), generator=gen))
        turns = int(torch.randint(4, (1,), generator=gen))
        patch = _crop_or_pad(array, self.patch_size, top, left)
        if flip:
            patch = patch[:, ::-1]
        patch = np.rot90(patch, turns)
        gt = torch.from_numpy(to_float(np.ascontiguousarray(patch))).permute(2, 0, 1).contiguous()
        return {"gt": gt}


class IterationBatchSampler(Sampler[list[int]]):
    """Yields the virtual indices of global batches ``k, k+1, ...`` for one rank.

    ``start`` is asked at the beginning of each pass, so a resumed run continues at the batch it stopped at.
    Batch ``k`` of rank ``r`` out of ``W`` holds indices ``((k * W + r) * B + j)`` for ``j < B``: ranks never
    share a patch, and the data does not depend on the number of dataloader workers.
    """

    def __init__(
        self,
        batch_size: int,
        batches_per_epoch: int,
        start: Callable[[], int],
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.start = start
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        first = self.start()
        for k in range(first, first + self.batches_per_epoch):
            base = (k * self.world_size + self.rank) * self.batch_size
            yield list(range(base, base + self.batch_size))


def center_crop(array: np.ndarray, size: int | None, multiple: int = 4) -> np.ndarray:
    """Central crop to at most ``size`` (None: whole image), trimmed to a multiple of ``multiple``."""
    height, width = array.shape[:2]
    crop_h = min(height, size) if size else height
    crop_w = min(width, size) if size else width
    crop_h -= crop_h % multiple
    crop_w -= crop_w % multiple
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return array[top : top + crop_h, left : left + crop_w]


class EvalGridDataset(Dataset):
    """Every (image, setting) pair of the fixed evaluation grid.

    Items: ``lq``, ``gt`` ``(3, H, W)`` in [0, 1], ``z`` ``(D,)``, ``blur_sigma``, ``noise_sigma``,
    ``jpeg_quality`` (0: none), ``setting`` (e.g. ``"b2_n30"``, ``"b0_n0_q30"``) and ``image`` (the file stem).
    Degraded inputs are made once on the CPU in float64 with a seed per image and setting (JPEG settings through
    libjpeg), so every call, model and machine sees the same bytes.
    """

    def __init__(
        self,
        source: ImageSource,
        settings: Sequence[Sequence[float]],
        codec: LevelCodec,
        seed: int = 0,
        crop: int | None = None,
        quantize: bool = True,
    ) -> None:
        if not settings:
            raise ValueError("the evaluation grid needs at least one (blur, noise) setting")
        self.source = source
        self.settings = [setting_levels(s) for s in settings]
        for blur, noise, jpeg in self.settings:  # fails early, naming the bad level
            codec.levels_to_z(blur, noise, jpeg)
        self.codec = codec
        self.seed = seed
        self.crop = crop
        self.quantize = quantize
        self._cache: dict[int, dict] = {}

    @property
    def setting_names(self) -> list[str]:
        return [setting_name(*s) for s in self.settings]

    def __len__(self) -> int:
        return len(self.source) * len(self.settings)

    def __getitem__(self, index: int) -> dict:
        item = self._cache.get(index)
        if item is None:
            image_index, setting_index = divmod(index, len(self.settings))
            blur, noise, jpeg = self.settings[setting_index]
            name = self.source.names[image_index]
            array = center_crop(self.source.get(image_index), self.crop)
            gt = torch.from_numpy(to_float(array)).permute(2, 0, 1).contiguous()
            lq = degrade_fixed(
                gt, blur, noise, image_key=name, seed=self.seed, quantize=self.quantize, jpeg=jpeg
            )
            item = {
                "lq": lq.reshape(gt.shape),
                "gt": gt,
                "z": self.codec.levels_to_z(blur, noise, jpeg)[0].float(),
                "blur_sigma": torch.tensor(blur, dtype=torch.float32),
                "noise_sigma": torch.tensor(noise, dtype=torch.float32),
                "jpeg_quality": torch.tensor(jpeg, dtype=torch.float32),
                "setting": setting_name(blur, noise, jpeg),
                "image": name,
            }
            self._cache[index] = item
        return item
