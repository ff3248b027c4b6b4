"""Builds the shmkit package: the C extension shmkit._shmkit with the library's
sources (../src) compiled into it, so that nothing needs to be installed first.

Only setuptools (and wheel, for pip) are needed. The library's version comes from
../CMakeLists.txt, the one place it is set; include/shmkit/version.h is generated from
its template as CMake would.
"""
import glob
import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def fail(msg):
    sys.exit("shmkit setup.py: " + msg)


if not os.path.isfile(os.path.join(ROOT, "src", "seg.c")):
    fail("the library's sources (%s) are not beside this directory: build from the "
         "python/ directory of a shmkit source tree (a pip older than 21.3 copies the "
         "directory away first: add --use-feature=in-tree-build)" % os.path.join(ROOT, "src"))


def library_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        m = re.search(r"project\(\s*shmkit\s+VERSION\s+(\d+)\.(\d+)\.(\d+)", f.read())
    if not m:
        fail("no 'project(shmkit VERSION x.y.z)' in CMakeLists.txt")
    return m.groups()


VERSION = library_version()


class BuildExt(build_ext):
    """Generates version.h into the build directory and compiles in parallel."""

    def finalize_options(self):
        super().finalize_options()
        # Thirteen library sources: compile them side by side where the option exists.
        if getattr(self, "parallel", None) in (None, 0, 1, False):
            self.parallel = os.cpu_count() or 1

    def run(self):
        inc = os.path.join(os.path.abspath(self.build_temp), "gen-include")
        os.makedirs(os.path.join(inc, "shmkit"), exist_ok=True)
        with open(os.path.join(ROOT, "include", "shmkit", "version.h.in")) as f:
            text = f.read()
        for key, val in (("PROJECT_VERSION_MAJOR", VERSION[0]),
                         ("PROJECT_VERSION_MINOR", VERSION[1]),
                         ("PROJECT_VERSION_PATCH", VERSION[2]),
                         ("PROJECT_VERSION", ".".join(VERSION))):
            text = text.replace("@%s@" % key, val)
        out = os.path.join(inc, "shmkit", "version.h")
        old = None
        if os.path.exists(out):
            with open(out) as f:
                old = f.read()
        if old != text:  # unchanged: keep its time, so nothing rebuilds for it
            with open(out, "w") as f:
                f.write(text)
        for ext in self.extensions:
            ext.include_dirs.insert(0, inc)
        super().run()


# Every library source, found by listing: a file the library gains is compiled in
# without an edit here (CMake lists them by name; this build follows the directory).
LIB_SOURCES = sorted(glob.glob(os.path.join(ROOT, "src", "*.c")))

ext = Extension(
    "shmkit._shmkit",
    sources=[os.path.join("shmkit", "_shmkit.c")] + LIB_SOURCES,
    include_dirs=[os.path.join(ROOT, "include"), os.path.join(ROOT, "src")],
    define_macros=[("_GNU_SOURCE", None)],
    # As the library's own build: C11, hidden symbols; the version script exports the
    # init function only.
    extra_compile_args=["-std=c11", "-fvisibility=hidden", "-Wall", "-Wextra",
                        "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
    extra_link_args=["-Wl,--version-script=" + os.path.join(HERE, "shmkit.map")],
    libraries=["pthread", "rt"],
    depends=[os.path.join(HERE, "shmkit.map")] + glob.glob(os.path.join(ROOT, "src", "*.h"))
    + glob.glob(os.path.join(ROOT, "include", "shmkit", "*.h")),
)

setup(
    name="shmkit",
    version=".".join(VERSION),
    description="Shared-memory IPC for Python over libshmkit: segments, blobs, "
    "channels, topics",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=["shmkit"],
    package_data={"shmkit": ["py.typed", "*.pyi"]},
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: C",
        "Operating System :: POSIX :: Linux",
    ],
)
