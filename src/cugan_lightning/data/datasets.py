"""Datasets: random ground-truth patches for training, the fixed degradation grid for evaluation.

Training items are a pure function of (seed, virtual index): which image, where to crop, how to flip and rotate
all come from a generator seeded with that pair. A run that resumes, or runs on another rank, therefore reads
exactly the patches an uninterrupted single run would; no worker or global random state is involved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..degradations import LevelCodec, degrade_fixed, lookup, make_generator, setting_name
from ..degradations.grid import GRID_FACTORS, setting_dict
from .io import ImageReadError, list_images, read_image_raw, to_float, to_rgb_array
from .layouts import is_color, to_gray_array

log = logging.getLogger(__name__)


class ImageSource:
    """Images by index, from a folder (read on demand, optionally cached) or from arrays in memory.

    ``check()`` decodes every file of the folder once, in parallel: with ``cache`` it keeps the pixels (so the
    check and training decode each file once); without, training decodes files again for every patch anyway.
    (A header alone does not show a truncated JPEG.) ``on_bad_file="skip"`` leaves out the
    files that cannot be training images, naming each once in the log with its reason; ``"error"`` (evaluation
    folders, or ``data.on_bad_file=error``) makes any such file fatal.

    ``channels``: 3 gives RGB (a gray image repeated), 1 gives gray ``(H, W, 1)`` (a colour image converted to
    its BT.601 luma, :func:`~.layouts.to_gray_array`, counted in ``converted`` and said once in the log).
    16-bit files stay uint16 either way: :func:`~.io.to_float` scales them by 65535.
    """

    def __init__(
        self,
        folder: str | Path | None = None,
        arrays: Sequence[tuple[str, np.ndarray]] | None = None,
        *,
        cache: bool = True,
        config_key: str | None = None,
        on_bad_file: str = "error",
        channels: int = 3,
    ) -> None:
        if (folder is None) == (arrays is None):
            raise ValueError("give exactly one of `folder` or `arrays`")
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 (gray) or 3 (RGB), got {channels!r}")
        self.channels = channels
        self.converted: set[str] = set()  # colour images read as gray (channels=1)
        self._said = False
        if on_bad_file not in ("skip", "error"):
            raise ValueError(f"data.on_bad_file must be 'skip' or 'error', got {on_bad_file!r}")
        self._cache: dict[int, np.ndarray] = {}
        self.cache = cache
        self.on_bad_file = on_bad_file
        self.folder, self.config_key = folder, config_key
        self.skipped: list[tuple[Path, str]] = []
        self.sizes: list[tuple[int, int]] = []  # (height, width), known after check()
        if arrays is not None:
            self.paths: list[Path] | None = None
            self.names = [name for name, _ in arrays]
            self._cache = {i: self._layout(name, array) for i, (name, array) in enumerate(arrays)}
            self._say_converted()
            self.sizes = [array.shape[:2] for _, array in arrays]
            self.cache = True
        else:
            self.paths = list_images(folder, config_key=config_key)
            self.names = [p.stem for p in self.paths]

    def __len__(self) -> int:
        return len(self.names)

    def _look(self, index: int) -> tuple[np.ndarray | None, tuple[int, int] | None, str | None]:
        assert self.paths is not None
        try:
            array = self._read(index)
            return (array if self.cache else None), tuple(array.shape[:2]), None
        except ImageReadError as err:
            return None, None, str(err).removeprefix(f"cannot read image '{self.paths[index]}': ")

    def check(self, threads: int = 8) -> None:
        """Open every file once (see the class docstring); keep the usable ones."""
        if self.paths is None or self.sizes:
            return
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            results = list(pool.map(self._look, range(len(self.paths))))
        bad = [(self.paths[i], reason) for i, (_, _, reason) in enumerate(results) if reason is not None]
        where = f" (set `{self.config_key}`)" if self.config_key else ""
        if bad and self.on_bad_file == "error":
            listing = "; ".join(f"{path.name}: {reason}" for path, reason in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise ImageReadError(
                f"{len(bad)} unusable image file(s) in '{self.folder}': {listing}{more}{where}"
            )
        for path, reason in bad:
            log.warning("skipping %s: %s", path, reason)
        keep = [i for i, (_, _, reason) in enumerate(results) if reason is None]
        if not keep:
            raise ImageReadError(
                f"image folder '{self.folder}' holds no usable image: all {len(bad)} image files are unusable "
                f"(the log names each){where}"
            )
        self.skipped = bad
        self._say_converted()
        self.paths = [self.paths[i] for i in keep]
        self.names = [p.stem for p in self.paths]
        self.sizes = [results[i][1] for i in keep]
        if self.cache:
            self._cache = {new: results[old][0] for new, old in enumerate(keep)}

    def preload(self, threads: int = 8) -> None:
        """Decode (and check) every image now, before the dataloader starts its workers: forked workers then
        share the decoded pages instead of each decoding its own copy. See :meth:`check`."""
        self.check(threads)

    def _layout(self, name: str, array: np.ndarray) -> np.ndarray:
        if self.channels == 3:
            return to_rgb_array(array)
        if is_color(array):
            self.converted.add(name)
        return to_gray_array(array)[:, :, None]

    def _say_converted(self) -> None:
        if self.converted and not self._said:  # once, however often the folder is checked
            self._said = True
            where = f"{self.config_key} " if self.config_key else ""
            log.info(
                "%s%s: %d colour image(s) converted to gray (BT.601 luma, as MATLAB's rgb2gray) for "
                "data.channels=1", where, self.folder or "the embedded photographs", len(self.converted),
            )  # fmt: skip

    def _read(self, index: int) -> np.ndarray:
        assert self.paths is not None
        return self._layout(self.paths[index].name, read_image_raw(self.paths[index]))

    def get(self, index: int) -> np.ndarray:
        """Image ``index`` as an integer array ``(H, W, channels)`` (uint8 or uint16)."""
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
    """Random ground-truth patches ``{"gt": (C, P, P)}`` in [0, 1] (C: the source's channels) with random flips and 90-degree rotations.

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


def center_crop(array: np.ndarray, size: int | None, multiple: int = 4, align: int = 1) -> np.ndarray:
    """Central crop to at most ``size`` (None: whole image), trimmed to a multiple of ``multiple``, its corner
    moved up and left to a multiple of ``align`` (8: the crop keeps a JPEG's 8x8 block grid)."""
    height, width = array.shape[:2]
    crop_h = min(height, size) if size else height
    crop_w = min(width, size) if size else width
    crop_h -= crop_h % multiple
    crop_w -= crop_w % multiple
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    top, left = top - top % align, left - left % align
    return array[top : top + crop_h, left : left + crop_w]


class EvalGridDataset(Dataset):
    """Every (image, setting) pair of the fixed evaluation grid.

    Items: ``lq``, ``gt`` ``(C, H, W)`` in [0, 1], ``z`` ``(D,)``, ``blur_sigma``, ``noise_sigma``,
    ``jpeg_quality`` (0: none), ``<factor>_level`` of the further factors (``poisson_level``, ...), ``setting``
    (e.g. ``"b2_n30"``, ``"b0_n0_q30"``, ``"b0_n0_p10"``) and ``image`` (the file stem).
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
        bits: int = 8,
    ) -> None:
        if not settings:
            raise ValueError("the evaluation grid needs at least one (blur, noise) setting")
        self.source = source
        self.settings = [setting_dict(s) for s in settings]
        for levels in self.settings:  # fails early, naming the bad level or a factor the codec lacks
            codec.encode_all(levels)
        self.codec = codec
        self.seed = seed
        self.crop = crop
        self.quantize = quantize
        self.bits = bits
        self._cache: dict[int, dict] = {}

    @property
    def setting_names(self) -> list[str]:
        return [setting_name(*s.values()) for s in self.settings]

    def __len__(self) -> int:
        return len(self.source) * len(self.settings)

    def __getitem__(self, index: int) -> dict:
        item = self._cache.get(index)
        if item is None:
            image_index, setting_index = divmod(index, len(self.settings))
            levels = self.settings[setting_index]
            blur, noise, jpeg = levels["blur"], levels["noise"], levels["jpeg"]
            extra = {factor: levels[factor] for factor in GRID_FACTORS[3:]}
            name = self.source.names[image_index]
            array = center_crop(self.source.get(image_index), self.crop)
            gt = torch.from_numpy(to_float(array)).permute(2, 0, 1).contiguous()
            lq = degrade_fixed(
                gt,
                blur,
                noise,
                image_key=name,
                seed=self.seed,
                quantize=self.quantize,
                jpeg=jpeg,
                extra=extra,
                bits=self.bits,
            )
            item = {
                "lq": lq.reshape(gt.shape),
                "gt": gt,
                "z": self.codec.encode_all(levels)[0].float(),
                "blur_sigma": torch.tensor(blur, dtype=torch.float32),
                "noise_sigma": torch.tensor(noise, dtype=torch.float32),
                "jpeg_quality": torch.tensor(jpeg, dtype=torch.float32),
                **{lookup(k).batch_key: torch.tensor(v, dtype=torch.float32) for k, v in extra.items()},
                "setting": setting_name(*levels.values()),
                "image": name,
            }
            self._cache[index] = item
        return item
