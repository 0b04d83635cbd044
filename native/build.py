"""Build description of the native step-pulse generator, used by setup.py for every install."""

from __future__ import annotations

from pathlib import Path

from setuptools import Extension

HERE = Path(__file__).resolve().parent
LIBRARY_SOURCES = ["schedule.c", "rt.c", "stepgen.c", "probe.c", "backend_sim.c",
                   "backend_chardev.c"]
# Cython 3's generated code is clean under -Wall -Wextra, so nothing is relaxed: the C library
# and the binding share one strict set (native/Makefile builds the library alone the same way).


def extensions(werror: bool) -> list[Extension]:
    """The `pca._stepgen` extension: the C library plus its Cython binding."""
    from Cython.Build import cythonize  # a build requirement (pyproject.toml)

    root = HERE.parent
    rel = HERE.relative_to(root)
    args = ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
    if werror:
        args.append("-Werror")
    ext = Extension(
        "pca._stepgen",
        sources=[str(rel / "_stepgen.pyx"), *(str(rel / s) for s in LIBRARY_SOURCES)],
        depends=[str(rel / "stepgen.h"), str(rel / "rt_internal.h"), str(rel / "wide.h")],
        include_dirs=[str(rel)],
        extra_compile_args=args,
        libraries=["pthread"],
    )
    return list(
        cythonize(
            [ext],
            build_dir="build/cython",
            compiler_directives={"language_level": "3"},
            quiet=True,
        )
    )
