"""The apps: every tool's one home. Each parses its arguments (or composes its Hydra config), wires the library
below it together and reports a user error as one ``error: ...`` line with exit status 2 (:mod:`.common`).

======================  =====================  ==============================================================
console script          module                 what it does
======================  =====================  ==============================================================
``cugan-train``         :mod:`.train`          the Hydra training app (also ``python -m cugan_lightning``)
``cugan-evaluate``      :mod:`.evaluate`       the Hydra evaluation app: the paper's tables
``cugan-restore``       :mod:`.restore`        restore image files
``cugan-dni``           :mod:`.dni`            write a DNI blend of an MSE and a GAN model
``cugan-export``        :mod:`.export`         safetensors / ONNX export
``cugan-app``           :mod:`.app`            the web page for interactive restoration
``cugan-prepare``       :mod:`.prepare`        download and lay out the data sets
``cugan-demo``          :mod:`.demo`           ``make demo``: both stages on the embedded photographs
``cugan-curve``         :mod:`.curve`          a run's validation PSNR over training time
======================  =====================  ==============================================================

``python -m cugan_lightning.apps.<module>`` runs the same tool. Nothing below this package imports it.
"""
