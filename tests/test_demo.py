"""The demo driver: its PSNR table and its failure path."""

import pytest

from cugan_lightning.apps.demo import StageFailed, gain_table, main


def test_gain_table_lists_each_setting_and_the_mean():
    metrics = {
        "val/psnr_input/b0_n30": 19.0,
        "val/psnr/b0_n30": 27.5,
        "val/psnr_input/b2_n0": 27.0,
        "val/psnr/b2_n0": 26.5,
        "val/psnr_input": 23.0,
        "val/psnr": 27.0,
    }
    lines = gain_table(metrics)
    assert lines[1].split() == ["b0_n30", "19.00", "27.50", "+8.50"]
    assert lines[2].split() == ["b2_n0", "27.00", "26.50", "-0.50"]
    assert lines[3].split() == ["mean", "23.00", "27.00", "+4.00"]
    with pytest.raises(StageFailed, match="ran no validation"):
        gain_table({"train/l_g_pix": 0.01})


@pytest.mark.slow
def test_a_failing_stage_ends_the_demo_with_one_line_and_status_2(tmp_path, capfd):
    code = main(["--out", str(tmp_path), f"data.train_dir={tmp_path / 'missing'}"])
    err = capfd.readouterr().err
    assert code == 2
    assert "set `data.train_dir`" in err and "error: the stage stopped with exit status 2" in err
    assert "Traceback" not in err
