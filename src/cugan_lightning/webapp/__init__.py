"""The web page for interactive modulation (``cugan-app``).

Open it, drop a photo (or pick a demo photograph), move the sliders (blur, noise, JPEG quality where the model
has that factor, and alpha with a GAN checkpoint), download the full-resolution result, copy the restore command
that reproduces it. :mod:`.workbench` does the work without Gradio; :mod:`.page` is the Gradio page (the ``app``
extra); the command-line tool is :mod:`cugan_lightning.apps.app`.
"""

from .workbench import DEFAULT_MAX_PIXELS, DEMO_PHOTOS, Frame, Photo, Settings, Superseded, Workbench

__all__ = ["DEFAULT_MAX_PIXELS", "DEMO_PHOTOS", "Frame", "Photo", "Settings", "Superseded", "Workbench"]
