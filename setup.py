"""Build of the native step-pulse generator; everything else is in pyproject.toml.

The C core is compiled for every install (`pip install .`), so a fresh machine
with a C compiler gets the same pulse generator as the Pi. A failed native
build fails the install: the pump never runs without its pulse generator.
"""

import os
import sys

from setuptools import setup

# PEP 517 builds do not put the project directory on sys.path; native/ lives there.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from native.build import extensions  # noqa: E402

setup(ext_modules=extensions(werror=os.environ.get("PCA_NATIVE_WERROR") == "1"))
