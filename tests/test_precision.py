"""The fast path (bfloat16 autocast with channels-last weights) is the default only where it is safe: picked
only where bfloat16 is native, and on the evaluation grid it moves no setting's PSNR by 0.01 dB or more."""

from __future__ import annotations

import pytest
import torch

from cugan_lightning.degradations import PAPER_SETTINGS
from cugan_lightning.evaluation.metrics import ImageScorer
from cugan_lightning.evaluation.models import load_models, parse_models
from cugan_lightning.evaluation.runner import evaluate, load_test_images
from cugan_lightning.inference import precision
from cugan_lightning.inference.precision import FastPath, native_bf16, resolve_inference_precision


def test_auto_picks_bf16_only_where_it_is_native(monkeypatch):
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "fma"})
    assert resolve_inference_precision("auto", "cpu") == "float32"
    assert not FastPath("auto", "cpu").enabled
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert resolve_inference_precision("auto", "cpu") == "bf16"
    assert resolve_inference_precision("float32", "cpu") == "float32"
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bf16"):
        resolve_inference_precision("fp8", "cpu")


@pytest.mark.slow
def test_bf16_moves_the_evaluation_grid_psnr_by_less_than_a_hundredth_of_a_db():
    """The shipped default model on the embedded validation photographs, at the paper's ten settings."""
    ok, why = native_bf16("cpu")
    if not ok:
        pytest.skip(f"bfloat16 is not native here ({why}): auto uses float32, nothing to check")
    images = load_test_images(None, crop=192)
    settings = [(float(b), float(n), 0.0) for b, n in PAPER_SETTINGS]
    scorer = ImageScorer(["psnr"])
    means = {}
    for name in ("float32", "bf16"):
        models = load_models(parse_models({"zoo": "zoo:"}), torch.device("cpu"), name)
        assert models[1].fast.precision == name
        rows = evaluate(models[1:], images, settings, scorer, device=torch.device("cpu")).rows
        for setting in {r["setting"] for r in rows}:
            values = [r["value"] for r in rows if r["setting"] == setting]
            means[(name, setting)] = sum(values) / len(values)
    differences = {s: abs(means[("bf16", s)] - means[("float32", s)]) for _, s in means}
    print(f"largest PSNR change, bf16 against float32: {max(differences.values()):.4f} dB", differences)
    assert len(differences) == 10 and max(differences.values()) < 0.01, differences
