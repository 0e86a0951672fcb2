"""The command-line tools: thin layers over the library that parse arguments and report user errors.

- ``restore``: restore image files (``python -m cugan_lightning.restore``, ``cugan-restore``);
- ``dni``: write a DNI blend of an MSE and a GAN model (``python -m cugan_lightning.dni``, ``cugan-dni``);
- ``export``: safetensors / ONNX export (``python -m cugan_lightning.export``, ``cugan-export``);
- ``demo``: ``make demo`` (``python -m cugan_lightning.demo``).

Each tool turns a user error into one ``error: ...`` line and exit status 2 through :mod:`.common`. Library
modules never import from here.
"""
