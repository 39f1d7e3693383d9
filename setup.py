"""Builds every .pyx under corenet/ and resolver/ as its own extension.

Cython directives live in each module's header comment (``# cython: ...``), so
bounds checking is switched off only where an index cannot come from the network.

The shared objects are linked stripped (``-s``): a release carries no debug symbols.
``CORENET_DEBUG_BUILD=1`` builds unoptimised, with symbols, for gdb and valgrind;
``CORENET_SYMBOLS=1`` builds as a release does but keeps the symbols, so that a profile
(callgrind, perf) names the functions of the code that is measured.

``CORENET_PROFILE=generate`` builds the extensions instrumented: a run of them
(scripts/profile_workload.py) writes how often each branch and function ran into
build/profile-<interpreter>/; ``CORENET_PROFILE=use`` builds from those counts (GCC's
profile-guided optimisation): the paths that ran packed together, the rest moved out of
their way, so that a cache miss touches a third fewer pages of code. Functions the run never
entered are compiled as without a profile. scripts/lib.sh (build_profiled) takes the three
steps; without the variable the build has no profile (a wheel built from the sdist).
"""
import os
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
#: Extensions that call C libraries themselves, and those libraries: OpenSSL (the headers
#: are libssl-dev's), nghttp2 (libnghttp2-dev's) and libdl (a part of libc since glibc 2.34;
#: ``corenet._tlssession`` finds the OpenSSL that CPython's ``_ssl`` uses with it).
LINKED = {"resolver.daemon.tls_server": ["ssl", "crypto"],
          "resolver.daemon.h2_server": ["nghttp2"], "corenet.https._h2": ["nghttp2"],
          "corenet.h2peer": ["nghttp2"],
          "corenet._tlssession": ["dl"]}
# -fno-plt: a call into libpython goes through the GOT at once, not through a stub in the
# module's PLT, which a cache miss would otherwise bring into the instruction cache as well.
CFLAGS = ["-O3", "-fno-plt", "-fno-strict-aliasing", "-Wno-unused-function",
          "-Wno-unreachable-code"]
LDFLAGS = ["-s"]
if os.environ.get("CORENET_SYMBOLS"):
    LDFLAGS = []
PROFILE_DIR = ROOT.resolve() / "build" / f"profile-{sys.implementation.cache_tag}"
PROFILE = os.environ.get("CORENET_PROFILE", "")
if PROFILE == "generate":
    CFLAGS = CFLAGS + [f"-fprofile-generate={PROFILE_DIR}"]
    LDFLAGS = LDFLAGS + [f"-fprofile-generate={PROFILE_DIR}"]
elif PROFILE == "use":
    # -fprofile-correction: counters two threads updated at once may disagree a little,
    # which would otherwise stop the build.
    CFLAGS = CFLAGS + [f"-fprofile-use={PROFILE_DIR}", "-fprofile-partial-training",
                       "-fprofile-correction", "-Wno-missing-profile"]
elif PROFILE:
    sys.exit(f"CORENET_PROFILE is generate or use, not {PROFILE!r}")
if os.environ.get("CORENET_DEBUG_BUILD"):
    CFLAGS = ["-O0", "-g3"]
    LDFLAGS = []


def extensions():
    exts = []
    for pyx in sorted(ROOT.glob("corenet/**/*.pyx")) + sorted(ROOT.glob("resolver/**/*.pyx")):
        rel = pyx.relative_to(ROOT)
        name = ".".join(rel.with_suffix("").parts)
        # "." (setup.py runs in its own directory): an absolute path would be written into
        # every generated C file, which then differs from one build directory to the next.
        exts.append(Extension(name, [str(rel)], include_dirs=["."], extra_compile_args=CFLAGS,
                              extra_link_args=LDFLAGS,
                              libraries=LINKED.get(name, [])))
    return exts


class BuildExt(build_ext):
    """Compiles the extensions in parallel, one job per CPU, unless told otherwise
    (``build_ext -j N``); pip and ``python -m build`` would compile them one by one."""

    def finalize_options(self):
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1
        super().finalize_options()


def ext_modules():
    # CORENET_METADATA_ONLY=1: no extension. scripts/setup.sh installs the tree editable so
    # (dependencies, entry points, the import hook) and compiles in place itself, so that a
    # second run only compiles what changed; scripts/package.sh builds the sdist so (MANIFEST.in
    # names the sources).
    if os.environ.get("CORENET_METADATA_ONLY"):
        return []
    # The C that Cython writes goes to a directory of each interpreter's own (build/cython-
    # cpython-311, ...): a Cython in another virtual environment regenerates every file (its
    # own .pxd are newer than them), and C shared between interpreters would make each build
    # recompile everything the other one built.
    return cythonize(
        extensions(),
        compiler_directives={"language_level": "3", "embedsignature": True},
        nthreads=os.cpu_count() or 1,
        build_dir=os.path.join("build", f"cython-{sys.implementation.cache_tag}"),
    )


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExt})
