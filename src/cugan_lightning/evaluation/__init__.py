"""Scoring restoration models the way the paper reports them; the library behind ``cugan-evaluate``
(no Hydra, no Lightning here).

- ``metrics``: per-image PSNR, PSNR-Y, SSIM, LPIPS and DISTS (torchmetrics) with the project's conventions,
  and the check of the LPIPS / DISTS backbone files;
- ``models``: the rows of an evaluation (the degraded input, generator files, DNI blends, per-level baselines);
- ``runner``: the fixed grid's inputs made once per image and setting, restored by every model in batches;
- ``tables``: summary and distance tables (Markdown, CSV, JSON); ``modulation``: modulation maps;
  ``curve``: the MSE-to-GAN curve; ``plots``: heatmaps and the perception-distortion plot.
"""
