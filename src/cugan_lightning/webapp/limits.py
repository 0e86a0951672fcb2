"""What the web page accepts from an upload, checked before any pixel is decoded: the file's size in bytes, what
its first bytes say it is (a PNG, JPEG, BMP or TIFF, never HTML or SVG named ``.png``), a TIFF's page count, and
the pixels its header claims (Pillow checks the file's structure too; no pixel is decoded).

Each check raises ValueError with one line that names the upload by its own name, never the server's path.
"""

from __future__ import annotations

from pathlib import Path

from ..data.io import ImageReadError, image_header

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "check_size", "check_upload", "image_kind", "tiff_pages"]

DEFAULT_MAX_UPLOAD_MB = 100
"""Largest upload the page accepts by default, in megabytes (``--max-upload-mb``); a 16.8-megapixel 16-bit RGBA
PNG stays under it."""

SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
)
MAX_PAGES_COUNTED = 1000


def image_kind(path: Path) -> str | None:
    """``"PNG"``, ``"JPEG"``, ``"BMP"`` or ``"TIFF"`` from the file's first bytes; ``"text"`` for a file that
    starts like markup (HTML, SVG, XML); None for anything else."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    for signature, kind in SIGNATURES:
        if head.startswith(signature):
            return kind
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return "text" if text.startswith(b"<") else None


def tiff_pages(path: Path, limit: int = MAX_PAGES_COUNTED) -> int:
    """How many pages (image file directories) a TIFF holds, counted from their offsets only (at most ``limit``;
    a chain that loops or leaves the file ends the count)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(16)
        order = "little" if head[:2] == b"II" else "big"
        big = int.from_bytes(head[2:4], order) == 43
        offset = int.from_bytes(head[8:16] if big else head[4:8], order)
        count_bytes, entry_bytes, offset_bytes = (8, 20, 8) if big else (2, 12, 4)
        seen: set[int] = set()
        while 0 < offset < size and offset not in seen and len(seen) < limit:
            seen.add(offset)
            handle.seek(offset)
            entries = int.from_bytes(handle.read(count_bytes), order)
            handle.seek(offset + count_bytes + entries * entry_bytes)
            offset = int.from_bytes(handle.read(offset_bytes) or b"\0", order)
    return len(seen)


def _megabytes(count: int) -> str:
    return f"{count / 2**20:,.1f} MB" if count < 2**30 else f"{count / 2**30:,.2f} GB"


def check_size(path: str | Path, name: str, max_bytes: int) -> int:
    """The upload's size in bytes; ValueError naming ``name`` when it is over ``max_bytes`` or empty."""
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise ValueError(
            f"'{name}' is {_megabytes(size)}, more than this page's limit of {_megabytes(max_bytes)}; "
            f"shrink it, or start the app with --max-upload-mb {size // 2**20 + 1}"
        )
    if size == 0:
        raise ValueError(f"'{name}' is empty (0 bytes)")
    return size


def check_upload(path: str | Path, name: str, max_bytes: int, max_pixels: int) -> tuple[int, int]:
    """An uploaded image's ``(width, height)`` from its header, or ValueError naming ``name`` and the reason: more
    than ``max_bytes`` or ``max_pixels``, empty, not a PNG / JPEG / BMP / TIFF (HTML or SVG named as an image
    included), a TIFF with several pages, or a header the reader refuses (truncated, a decompression bomb)."""
    path = Path(path)
    check_size(path, name, max_bytes)
    kind = image_kind(path)
    if kind == "text":
        raise ValueError(
            f"'{name}': not an image, it holds text (HTML, SVG or XML); upload a PNG, JPEG, BMP or TIFF"
        )
    if kind is None:
        raise ValueError(f"'{name}': not an image (no known image format); upload a PNG, JPEG, BMP or TIFF")
    if kind == "TIFF" and (pages := tiff_pages(path)) > 1:
        many = f"more than {MAX_PAGES_COUNTED - 1}" if pages >= MAX_PAGES_COUNTED else str(pages)
        raise ValueError(
            f"'{name}' is a TIFF of {many} pages; the page restores one image: save that page alone"
        )
    try:
        width, height = image_header(path)
    except ImageReadError as err:
        raise ImageReadError(str(err).replace(f"'{path}'", f"'{name}'")) from None
    if width * height > max_pixels:
        raise ValueError(
            f"'{name}' is {width}x{height} = {width * height:,} pixels, more than this page's limit of "
            f"{max_pixels:,}; shrink it, or start the app with --max-pixels {width * height}"
        )
    return width, height
