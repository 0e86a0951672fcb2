"""Previews of large images: Restorer.preview (and its array / tensor forms) and the notebook session's preview."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import make_generator
from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.degradations import LevelCodec
from cugan_lightning.inference import PREVIEW_SIDE, Restorer, preview_size
from cugan_lightning.interactive import ModulationSession


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    return Restorer(make_generator(0), LevelCodec())


def network_inputs(restorer: Restorer) -> list[tuple[int, ...]]:
    """Shapes the base network is run on from now on (a list that fills as it runs)."""
    shapes: list[tuple[int, ...]] = []
    restorer.net_g.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    return shapes


def test_preview_size_keeps_the_aspect_and_bounds_the_long_side():
    assert PREVIEW_SIDE == 512
    assert preview_size(2048, 2048) == (512, 512)
    assert preview_size(3000, 1000, 600) == (600, 200)
    assert preview_size(100, 4000, 64) == (2, 64)
    assert preview_size(300, 200, 512) == (300, 200)  # fits: unchanged
    for bad in (8, 0, 100.0, True):
        with pytest.raises(ValueError, match="max_side must be an integer >= 16"):
            preview_size(10, 10, bad)


def test_a_preview_is_the_shrunk_image_restored_with_levels_shrunk_alike(restorer):
    x = torch.rand(1, 3, 64, 128)
    shapes = network_inputs(restorer)
    out = restorer.preview(x, blur=2.0, noise=30, max_side=32)
    assert out.shape == (1, 3, 16, 32) and shapes == [(1, 3, 16, 32)]  # one pass, at the small size
    small = F.interpolate(x, size=(16, 32), mode="area")
    # shrinking 4x divides a blur sigma by 4 and averages the noise down by 4
    torch.testing.assert_close(out, restorer.restore(small, blur=0.5, noise=7.5), rtol=0, atol=1e-6)
    kept = restorer.preview(x, blur=2.0, noise=30, max_side=32, scale_levels=False)
    torch.testing.assert_close(kept, restorer.restore(small, blur=2.0, noise=30), rtol=0, atol=1e-6)
    raw = restorer.preview(x, z=[0.5, 0.6], max_side=32)  # a raw z is scaled the same way
    torch.testing.assert_close(raw, out, rtol=0, atol=1e-6)


def test_a_preview_of_an_image_that_fits_is_the_full_restoration(restorer):
    image = np.random.default_rng(0).integers(0, 256, size=(24, 40, 3)).astype(np.uint8)
    np.testing.assert_array_equal(
        restorer.preview(image, blur=1.0, noise=20, max_side=40), restorer.restore(image, blur=1.0, noise=20)
    )


@pytest.mark.parametrize(
    "shape, dtype",
    [((60, 90, 4), np.uint8), ((60, 90), np.uint16), ((60, 90, 2), np.uint16), ((60, 90, 3), np.float32)],
)
def test_a_preview_keeps_the_layout_and_dtype(restorer, shape, dtype):
    rng = np.random.default_rng(1)
    scale = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
    image = (rng.random(shape) * scale).astype(dtype)
    out = restorer.preview(image, noise=10, max_side=30)
    assert out.dtype == dtype and out.shape == (20, 30, *shape[2:])
    if len(shape) == 3 and shape[2] in (2, 4):  # alpha is shrunk like the colours, not restored
        alpha = torch.from_numpy(image[..., -1].astype(np.float32) / scale)[None, None]
        expected = F.interpolate(alpha, size=(20, 30), mode="area")[0, 0].numpy()
        np.testing.assert_array_equal(out[..., -1], np.round(expected * scale).astype(dtype))


def test_a_preview_of_a_pil_image_or_a_single_tensor_comes_back_the_same_kind(restorer):
    pil = Image.fromarray(np.random.default_rng(2).integers(0, 256, size=(50, 100, 3)).astype(np.uint8))
    out = restorer.preview(pil, noise=15, max_side=20)
    assert isinstance(out, Image.Image) and out.size == (20, 10) and out.mode == "RGB"
    single = restorer.preview(torch.rand(3, 40, 20, dtype=torch.float64), noise=15, max_side=20)
    assert single.shape == (3, 20, 10) and single.dtype == torch.float64
    with pytest.raises(ValueError, match="max_side"):
        restorer.preview(pil, noise=15, max_side=4)


def test_the_session_shows_a_preview_first_on_a_large_image(tmp_path):
    pytest.importorskip("ipywidgets")
    ckpt = save_generator_checkpoint(tmp_path / "m.ckpt", make_generator(0), LevelCodec(), kind="cunet")
    image = np.random.default_rng(3).integers(0, 256, size=(40, 60, 3)).astype(np.uint8)
    session = ModulationSession(ckpt, image=image, preview_side=20)
    assert session.needs_preview()
    opened = session.levels  # at the photo's blind estimate
    small = session.preview(blur=1.0, noise=25)
    assert small.shape == (13, 20, 3) and session.levels == opened  # nothing moved
    np.testing.assert_array_equal(small, session.restorer.preview(image, blur=1.0, noise=25.0, max_side=20))

    session.widgets()
    shown: list[tuple[int, int]] = []
    session.controls["output"].observe(
        lambda change: shown.append(Image.open(io.BytesIO(change["new"])).size), names="value"
    )
    session.controls["noise"].value = 25
    assert shown == [(20, 13), (60, 40)]  # the preview, then the full result
    assert not ModulationSession(ckpt, image=image, preview_side=None).needs_preview()
