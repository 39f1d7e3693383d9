"""Builds every .pyx under corenet/ and resolver/ as its own extension.

Cython directives live in each module's header comment (``# cython: ...``), so
bounds checking is switched off only where an index cannot come from the network.
"""
import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).parent
CFLAGS = ["-O3", "-fno-strict-aliasing", "-Wno-unused-function", "-Wno-unreachable-code"]
if os.environ.get("CORENET_DEBUG_BUILD"):
    CFLAGS = ["-O0", "-g3"]


def extensions():
    exts = []
    for pyx in sorted(ROOT.glob("corenet/**/*.pyx")) + sorted(ROOT.glob("resolver/**/*.pyx")):
        rel = pyx.relative_to(ROOT)
        name = ".".join(rel.with_suffix("").parts)
        exts.append(Extension(name, [str(rel)], include_dirs=[str(ROOT)], extra_compile_args=CFLAGS))
    return exts


setup(
    ext_modules=cythonize(
        extensions(),
        compiler_directives={"language_level": "3", "embedsignature": True},
        nthreads=os.cpu_count() or 1,
    ),
)
