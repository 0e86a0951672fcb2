"""Package discovery (everything else is in pyproject.toml).

The code lives in src/; the Hydra configs stay at the repository root (conf/) and are mapped into the package as
``cugan_lightning.conf``, every config group a subpackage, so a wheel carries them and the apps find them at
``pkg://cugan_lightning.conf``. Discovered here rather than listed in pyproject.toml, so that a new config group
or subpackage needs no packaging change. ``hydra_plugins`` is Hydra's namespace for plugins: the SLURM launcher of
``hydra/launcher=slurm`` lives there, because Hydra takes launchers from that namespace only.
"""

from setuptools import find_namespace_packages, find_packages, setup

CONFIG_PACKAGE = "cugan_lightning.conf"

config_packages = [CONFIG_PACKAGE] + [f"{CONFIG_PACKAGE}.{name}" for name in find_namespace_packages("conf")]

setup(
    packages=find_packages("src")
    + find_namespace_packages("src", include=["hydra_plugins.*"])
    + config_packages,
    package_dir={"": "src", CONFIG_PACKAGE: "conf"},
    # the Hydra configs, and the model zoo's registry with the models and level estimators it ships
    package_data={
        **{name: ["*.yaml"] for name in config_packages},
        "cugan_lightning.zoo": ["*.json", "*.safetensors", "*.pt"],
    },
)
