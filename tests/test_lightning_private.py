"""The Lightning internals the project touches (modules/lightning_private.py), checked on a real trainer: each
attribute still exists, and the behaviour the log-step workaround corrects still happens without it. When an
upgrade changes either, these tests fail and say what to revisit."""

from __future__ import annotations

import lightning
import pytest
from lightning.pytorch.callbacks import Callback

from conftest import TINY, compose_config
from cugan_lightning.apps.train import build
from cugan_lightning.modules import base, lightning_private

RUN = [*TINY, "data.batches_per_epoch=2", "logger=csv", "callbacks.model_checkpoint=null"]


class Probe(Callback):
    """At the first training batch: (batches the logger counts, batches trained, the module's iteration)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        loop = trainer.fit_loop.epoch_loop
        assert lightning_private.attached_trainer(module) is trainer
        self.seen.append((loop._batches_that_stepped, loop.batch_progress.total.completed, module.iteration))


def resume_from_epoch_end(tmp_path, monkeypatch, with_workaround: bool) -> tuple[int, int, int]:
    datamodule, model, trainer = build(compose_config([*RUN, "iterations=2"], tmp_path / "first"))
    trainer.fit(model, datamodule=datamodule)
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    if not with_workaround:
        monkeypatch.setattr(base, "align_log_step", lambda trainer: None)
    datamodule, model, trainer = build(
        compose_config([*RUN, "iterations=4", f"ckpt_path={checkpoint}"], tmp_path / "second")
    )
    probe = Probe()
    trainer.callbacks.append(probe)
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(checkpoint))
    return probe.seen[0]


def test_the_internals_used_exist_on_this_lightning(tmp_path):
    version = ".".join(lightning.__version__.split(".")[:2])
    assert version in lightning_private.CHECKED_VERSIONS, (
        f"Lightning {lightning.__version__} is not among the versions modules/lightning_private.py was checked "
        f"against ({lightning_private.CHECKED_VERSIONS}): run these tests, then add it"
    )
    datamodule, model, trainer = build(compose_config([*RUN, "iterations=2"], tmp_path))
    missing = [name for name, ok in lightning_private._private_attributes(trainer).items() if not ok]
    assert not missing, (
        f"Lightning {lightning.__version__} lacks {missing}: update modules/lightning_private.py"
    )
    assert lightning_private.attached_trainer(model) is None and model.iteration == 0  # not fitting yet
    lightning_private.set_max_steps(trainer, 3)
    assert trainer.fit_loop.epoch_loop.max_steps == 3


def test_without_the_workaround_an_epoch_end_resume_still_logs_one_step_ahead(tmp_path, monkeypatch):
    stepped, trained, iteration = resume_from_epoch_end(tmp_path, monkeypatch, with_workaround=False)
    assert trained == iteration == 2
    if stepped == trained:
        pytest.fail(
            f"Lightning {lightning.__version__} no longer counts one batch too many after a resume from an "
            "end-of-epoch checkpoint: remove align_log_step from modules/lightning_private.py (and this test)"
        )
    assert stepped == trained + 1


def test_with_the_workaround_the_logged_step_equals_the_batches_trained(tmp_path, monkeypatch):
    assert resume_from_epoch_end(tmp_path, monkeypatch, with_workaround=True) == (2, 2, 2)
