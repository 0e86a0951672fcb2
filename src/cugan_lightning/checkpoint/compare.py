"""Can two generator files be used together? Same class, constructor arguments, codec, weight names, shapes
and dtypes; every difference is named in the error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

from .metadata import IncompatibleCheckpointsError, generator_differences
from .read import GeneratorFile

__all__ = ["check_same_architecture", "check_state_dicts_match"]


def _list_some(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_state_dicts_match(
    first: Mapping[str, Tensor], second: Mapping[str, Tensor], names: tuple[str, str] = ("GAN", "MSE")
) -> None:
    """Raise :class:`IncompatibleCheckpointsError` unless both state dicts share keys, shapes and dtypes."""
    only_first = sorted(set(first) - set(second))
    only_second = sorted(set(second) - set(first))
    if only_first or only_second:
        parts = [
            f"only in {n}: {_list_some(k)}"
            for n, k in zip(names, (only_first, only_second), strict=True)
            if k
        ]
        raise IncompatibleCheckpointsError(
            f"the {names[0]} and {names[1]} generators have different weights ({'; '.join(parts)})"
        )
    for key, a in first.items():
        b = second[key]
        if a.shape != b.shape:
            raise IncompatibleCheckpointsError(
                f"the {names[0]} and {names[1]} generators differ in '{key}': shape {tuple(a.shape)} vs "
                f"{tuple(b.shape)}"
            )
        if a.dtype != b.dtype:
            raise IncompatibleCheckpointsError(
                f"the {names[0]} and {names[1]} generators differ in '{key}': dtype {a.dtype} vs {b.dtype}"
            )


def check_same_architecture(first: GeneratorFile, second: GeneratorFile) -> None:
    """Both files must hold one architecture under one codec, with the same weight names, shapes and dtypes."""
    differences = generator_differences(first.metadata, second.metadata, (first.role, second.role))
    if differences:
        raise IncompatibleCheckpointsError(
            f"the {first.role} and {second.role} checkpoints have different generator architectures or "
            f"codecs ({'; '.join(differences)}); they must come from one architecture"
        )
    if first.state is not None and second.state is not None:
        check_state_dicts_match(first.state, second.state, (first.role, second.role))
