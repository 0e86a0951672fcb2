"""Helpers shared by the benchmark scripts: interleaved rounds and medians (all in one run), and the data modules
whose device degradation they time."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    candidates: dict[str, Callable[[], object]], calls: int, rounds: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each candidate; every round times each candidate once, in a shuffled order
    (the first of a round pays for what the last one left in the caches). Each candidate is called once first,
    untimed (warm-up, compilation)."""
    for fn in candidates.values():
        fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    order = random.Random(0)
    for _ in range(rounds):
        names = list(candidates)
        order.shuffle(names)
        for name in names:
            fn = candidates[name]
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            synchronize(device)
            times[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in times.items()}


def degradation_modules(batch: int, patch: int) -> tuple[Any, Any]:
    """The training data module's device degradation with blur and noise, and with blur, noise and JPEG."""
    from cugan_lightning.data import RestorationDataModule
    from cugan_lightning.degradations import LevelCodec, LevelSampler

    two = RestorationDataModule(patch_size=patch, batch_size=batch, num_workers=0)
    three = RestorationDataModule(
        patch_size=patch,
        batch_size=batch,
        num_workers=0,
        sampler=LevelSampler(factors=("blur", "noise", "jpeg")),
        codec=LevelCodec(names=("blur", "noise", "jpeg"), max_levels=(4.0, 50.0, 92.0)),
    )
    return two, three
