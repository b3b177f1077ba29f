"""Wheel tags: a wheel that carries the server (lrbridge/_server, staged by
`make wheel`) holds zeromq's native addon for one platform, so it is tagged
for that platform; without it the wheel is pure Python."""

from pathlib import Path

from setuptools import setup

from setuptools.command.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent


class bdist_wheel_platform(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        if (HERE / "python_client" / "lrbridge" / "_server").is_dir():
            self.root_is_pure = False

    def get_tag(self):
        python, abi, plat = super().get_tag()
        return ("py3", "none", plat) if not self.root_is_pure else (python, abi, plat)


setup(cmdclass={"bdist_wheel": bdist_wheel_platform})
