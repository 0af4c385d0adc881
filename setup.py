"""Packaging hook: the registry lives at the top of the repository (`providers.yaml`,
beside its JSON Schema), where users and editors find it, and ships inside the package
so `pip install .`, wheels and the Docker image carry it. Editable installs and source
checkouts read it from the top directly (`DEFAULT_FILE` in exporter/config.py)."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("providers.yaml", "providers.schema.json", "feeds.yaml")


class BuildPyWithRegistry(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the files from the top of the checkout
        target = Path(self.build_lib) / "exporter"
        self.mkpath(str(target))
        for name in SHIPPED:
            self.copy_file(name, str(target / name))


setup(cmdclass={"build_py": BuildPyWithRegistry})
