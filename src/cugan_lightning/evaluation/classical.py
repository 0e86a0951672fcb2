"""Classical restorers as rows of an evaluation: BM3D, non-local means, Wiener and Richardson-Lucy deconvolution.

Each is *non-blind*: it is told the true levels of every setting (the noise sigma, the Gaussian blur's sigma and
hence its 21-tap kernel), the most a classical method can be given, so the table compares them with the
networks under identical inputs. A setting a method cannot handle is left out and shown as ``n/a`` in the
tables, never silently averaged in:

=============  ===================================================  =======================================
name           restores                                             n/a on
=============  ===================================================  =======================================
``bm3d``       noise (colour BM3D; any blur stays)                  blur only, JPEG
``nlm``        noise (non-local means; any blur stays)              blur only, JPEG
``wiener``     blur (+ noise): Wiener deconvolution                 noise only, JPEG
``rl``         blur (+ noise): Richardson-Lucy deconvolution        noise only, JPEG
=============  ===================================================  =======================================

Nor can any of them restore a factor whose registry entry says ``classical = "none"`` (JPEG, Poisson noise,
motion blur: they assume Gaussian noise of one sigma and a known Gaussian kernel): such a setting gets no
classical rows, and the evaluation says why (:func:`unreached_factors`) instead of faking one.

Named in the evaluation app as ``models.bm3d=classical:bm3d`` (any row name). BM3D comes from the ``bm3d``
package (``pip install -e '.[classical]'``); the others from scikit-image. They run on the CPU in float64,
one image at a time; the restored image is clipped to [0, 1] like the networks' outputs. Gray images (a gray
model's table) run in gray: BM3D's gray algorithm, NLM on one channel, Wiener and Richardson-Lucy on the one plane.

Parameters (fixed rules of the given levels, chosen on the embedded *training* photographs, never on the
evaluation images): NLM uses ``h = 0.8 sigma`` with 5x5 patches searched 13x13 (scikit-image's recommended
setting); Wiener's regularisation weight is ``balance = 0.0005 + 1500 sigma^3`` (sigma on the 0..1 scale: 0.0005
without noise, 0.30 at noise 15, 2.4 at 30, 11 at 50); Richardson-Lucy runs ``400 / blur^2`` iterations (10..400)
without noise and 3 with it (more iterations amplify the noise).
Deconvolution pads each side by twice the kernel radius (edge values, like the blur's replicate border) so the
FFT's wrap-around stays outside the image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..degradations.blur import gaussian_kernel2d
from ..degradations.factors import lookup

__all__ = [
    "CLASSICAL_METHODS",
    "PREFIX",
    "ClassicalMethod",
    "classical_method",
    "is_classical",
    "unreached_factors",
]

PREFIX = "classical:"
"""How a ``models`` entry names a classical method: ``classical:bm3d``."""

KERNEL_SIZE = 21  # the degradation's blur kernel (docs/degradations.md)


def unreached_factors(levels: Mapping[str, float]) -> list[str]:
    """The factors at a nonzero level that no classical method here restores (registry ``classical:
    none``)."""
    return [name for name, value in levels.items() if value and lookup(name).classical == "none"]


def psf(blur: float) -> np.ndarray:
    """The degradation's 21x21 Gaussian kernel for blur sigma ``blur`` (float64, sums to 1)."""
    return gaussian_kernel2d(float(blur), KERNEL_SIZE, dtype=torch.float64)[0].numpy()


def _padded(method: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> np.ndarray:
    pad = KERNEL_SIZE - 1  # twice the kernel radius
    out = method(np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    return out[pad:-pad, pad:-pad]


def _bm3d(lq: np.ndarray, blur: float, noise: float) -> np.ndarray:
    try:
        import bm3d
    except ImportError as err:  # an optional extra
        raise ImportError(
            "classical:bm3d needs the bm3d package: pip install -e '.[classical]' (or pip install bm3d)"
        ) from err
    if lq.shape[-1] == 1:  # gray: BM3D itself (bm3d_rgb runs it on a colour transform of RGB)
        return bm3d.bm3d(lq[..., 0], noise / 255.0)[..., None]
    return bm3d.bm3d_rgb(lq, noise / 255.0)


def _nlm(lq: np.ndarray, blur: float, noise: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    sigma = noise / 255.0
    gray = lq.shape[-1] == 1
    out = denoise_nl_means(
        lq[..., 0] if gray else lq, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True,
        channel_axis=None if gray else -1,
    )  # fmt: skip
    return out[..., None] if gray else out


def _wiener(lq: np.ndarray, blur: float, noise: float) -> np.ndarray:
    from skimage.restoration import wiener

    kernel, balance = psf(blur), 0.0005 + 1500.0 * (noise / 255.0) ** 3

    def deconvolve(x: np.ndarray) -> np.ndarray:
        return np.stack([wiener(x[..., c], kernel, balance, clip=False) for c in range(x.shape[-1])], axis=-1)

    return _padded(deconvolve, lq)


def _richardson_lucy(lq: np.ndarray, blur: float, noise: float) -> np.ndarray:
    from skimage.restoration import richardson_lucy

    kernel = psf(blur)
    iterations = min(400, max(10, round(400 / blur**2))) if noise == 0 else 3

    def deconvolve(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, 1.0)
        return np.stack(
            [richardson_lucy(x[..., c], kernel, num_iter=iterations, clip=False) for c in range(x.shape[-1])],
            axis=-1,
        )

    return _padded(deconvolve, lq)


@dataclass(frozen=True)
class ClassicalMethod:
    """A non-blind classical restorer: ``restore(lq, blur, noise)`` on a batch, told the true levels."""

    name: str
    description: str
    needs: str  # "noise" or "blur": the degradation it exists to remove
    run: Callable[[np.ndarray, float, float], np.ndarray]

    def handles(self, blur: float, noise: float, jpeg: float = 0.0, **levels: float) -> bool:
        """Whether a setting is within this method's reach (False: ``n/a`` in the tables): none with a level of
        a factor of :func:`unreached_factors` (JPEG, Poisson, motion), else the one it exists to remove."""
        if unreached_factors({"jpeg": jpeg, **levels}):
            return False
        return noise > 0 if self.needs == "noise" else blur > 0

    def restore(self, lq: Tensor, blur: Tensor, noise: Tensor) -> Tensor:
        """``lq`` ``(B, C, H, W)`` in [0, 1] (C 3, or 1: gray), the true ``blur`` and ``noise`` levels ``(B,)`` ->
        ``(B, C, H, W)``."""
        out = []
        for image, b, n in zip(lq.detach().cpu().double(), blur.tolist(), noise.tolist(), strict=True):
            if not self.handles(b, n):
                raise ValueError(f"classical:{self.name} cannot restore blur {b:g}, noise {n:g}")
            restored = self.run(image.permute(1, 2, 0).numpy(), float(b), float(n))
            out.append(torch.from_numpy(np.clip(restored, 0.0, 1.0)).permute(2, 0, 1))
        return torch.stack(out).to(device=lq.device, dtype=lq.dtype)


CLASSICAL_METHODS: dict[str, ClassicalMethod] = {
    m.name: m
    for m in (
        ClassicalMethod("bm3d", "BM3D (colour; BM3D deblurring when blurred)", "noise", _bm3d),
        ClassicalMethod("nlm", "non-local means (denoising only)", "noise", _nlm),
        ClassicalMethod("wiener", "Wiener deconvolution", "blur", _wiener),
        ClassicalMethod("rl", "Richardson-Lucy deconvolution", "blur", _richardson_lucy),
    )
}


def is_classical(value: object) -> bool:
    """Whether a ``models`` entry names a classical method (``classical:NAME``)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def classical_method(value: str, key: str = "models") -> ClassicalMethod:
    """The method a ``classical:NAME`` entry names; an unknown name is an error listing the known ones."""
    name = value.removeprefix(PREFIX)
    if name not in CLASSICAL_METHODS:
        raise ValueError(
            f"{key}: unknown classical method '{name}'; choose one of "
            + ", ".join(f"{PREFIX}{n}" for n in CLASSICAL_METHODS)
        )
    if name == "bm3d":
        try:
            import bm3d  # noqa: F401
        except ImportError:
            raise ValueError(
                f"{key}: classical:bm3d needs the bm3d package: pip install -e '.[classical]' (or pip install bm3d)"
            ) from None
    return CLASSICAL_METHODS[name]
