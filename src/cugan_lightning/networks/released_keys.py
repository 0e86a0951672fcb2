"""The authors' released generator's parameter names, renamed to :class:`~.cunet.CUnet`'s (docs/model.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

__all__ = ["load_released_state_dict"]


def load_released_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a state dict of the authors' released 3-scale ``CUGAN`` generator to ``CUnet`` names.

    A leading ``module.`` (DataParallel) is dropped. The result loads into ``CUnet()`` with ``strict=True``.
    """
    stage_conv = {
        "conv_stage1_left": "head",
        "conv_stage1_right": "tail",
        "conv_stage2_left": "downs.0",
        "conv_stage3_left": "downs.1",
        "conv_stage2_right": "ups.0",
        "conv_stage3_right": "ups.1",
        "stage3_scale": "cond.msf1",
        "stage2_scale": "cond.msf0",
        "stage1_scale": "cond.out",
    }
    block = re.compile(r"CResBlocks_stage(\d)_(left|right)\.(\d+)\.(conv1|conv2|local_scale)\.(weight|bias)")
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        name = key.removeprefix("module.")
        if m := block.fullmatch(name):
            s, side, j, layer, kind = int(m[1]) - 1, m[2], int(m[3]), m[4], m[5]
            if layer == "local_scale":
                new = f"cond.{'enc' if side == 'left' else 'dec'}{s}_{j}.{kind}"
            else:
                new = f"{'encoders' if side == 'left' else 'decoders'}.{s}.{j}.{layer}.{kind}"
        else:
            prefix, _, kind = name.rpartition(".")
            if prefix not in stage_conv:
                raise KeyError(f"unexpected key {key!r} in the released CUGAN state dict")
            new = f"{stage_conv[prefix]}.{kind}"
        out[new] = value
    return out
