"""Reading images from disk into float RGB arrays, whatever their bit depth and channel layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and the reason."""


def list_images(folder: str | Path, *, config_key: str | None = None) -> list[Path]:
    """The image files directly inside ``folder`` (not its subfolders), sorted for a reproducible order.

    Subfolders are ignored on purpose: benchmark folders often keep noisy or downscaled copies in them.

    ``config_key`` names the setting that gave the folder, so that the error says what to change.
    """
    where = f" (set `{config_key}`)" if config_key else ""
    if folder is None or str(folder) in ("", "None", "???"):
        raise FileNotFoundError(f"no image folder given{where}")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist{where}")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(
            f"image folder '{root}' holds no images ({', '.join(IMAGE_EXTENSIONS)}){where}"
        )
    return files


def to_rgb_array(image: np.ndarray) -> np.ndarray:
    """Any image array to ``(H, W, 3)`` keeping its integer type: gray is repeated, alpha is dropped.

    Boolean and float arrays are converted to uint8 / float32 respectively.
    """
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 2:  # gray + alpha
        array = np.repeat(array[:, :, :1], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f"unsupported image shape {np.shape(image)}; expected (H, W), (H, W, 3) or (H, W, 4)"
        )
    return np.ascontiguousarray(array)


def to_float(array: np.ndarray) -> np.ndarray:
    """Integer or float image array to float32 in [0, 1] (uint16 is scaled by 65535)."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(array.astype(np.float32) / 255.0, 0.0, 1.0)
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def read_image_array(path: str | Path, *, keep_alpha: bool = False) -> np.ndarray:
    """Read an image file as an integer array ``(H, W, C)`` at its own bit depth (uint8 or uint16).

    With ``keep_alpha`` an RGBA file stays 4-channel; otherwise the result is RGB.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                array = np.asarray(img).astype(np.int64)
                array = np.clip(array, 0, 65535).astype(np.uint16)
            elif mode == "F":
                array = (np.clip(np.asarray(img), 0.0, 1.0) * 65535).round().astype(np.uint16)
            elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
                array = np.asarray(img.convert("RGBA"))
            elif mode in ("RGB", "L"):
                array = np.asarray(img)
            else:  # P, 1, CMYK, YCbCr, ...
                array = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise ImageReadError(f"cannot read image '{path}': no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ImageReadError(f"cannot read image '{path}': {err}") from None
    if path.suffix.lower() in (".tif", ".tiff") and array.dtype not in (np.uint8, np.uint16):
        array = to_float(array)
    if keep_alpha and array.ndim == 3 and array.shape[2] == 4:
        return np.ascontiguousarray(array)
    return to_rgb_array(array)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 RGB ``(H, W, 3)`` in [0, 1]."""
    return to_float(read_image_array(path))
