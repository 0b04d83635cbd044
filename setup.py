"""Build of the native step-pulse generator; everything else is in pyproject.toml.

The C core is compiled for every install (`pip install .`), so a fresh machine
with a C compiler gets the same pulse generator as the Pi.
"""

import os

from setuptools import setup

ext_modules = []
try:
    from native.build import extensions  # provided by native/ (the pulse generator)
except ImportError:  # the native package is not there yet
    extensions = None
if extensions is not None:
    ext_modules = extensions(werror=os.environ.get("PCA_NATIVE_WERROR") == "1")

setup(ext_modules=ext_modules)
