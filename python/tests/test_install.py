"""Acceptance: in a fresh venv made with --system-site-packages from this python,
`pip install --no-build-isolation ./python` works with no package index, and the
installed package imports and moves a message. Slow (it compiles the extension), so
it is one test; skipped where venv or pip is missing."""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_venv_pip_install(tmp_path):
    if os.environ.get("SHMKIT_PY_SKIP_INSTALL"):
        pytest.skip("SHMKIT_PY_SKIP_INSTALL is set")
    try:
        import ensurepip  # noqa: F401  (Debian's python3-venv brings it)
        import venv  # noqa: F401
    except ImportError as e:
        pytest.skip("venv unavailable: %s" % e)
    # A copy of the tree, so that the build writes nothing into the sources.
    tree = tmp_path / "tree"
    for part in ("src", "include", "python"):
        shutil.copytree(os.path.join(ROOT, part), str(tree / part),
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "*.so",
                                                      "__pycache__"))
    shutil.copy(os.path.join(ROOT, "CMakeLists.txt"), str(tree / "CMakeLists.txt"))
    env_dir = tmp_path / "venv"
    r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        pytest.skip("python -m venv failed: %s" % r.stdout.decode()[-500:])
    py = str(env_dir / "bin" / "python")
    if subprocess.run([py, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        pytest.skip("pip is not available in the venv")
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)  # the venv must find its own installed copy
    r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "./python"],
                       cwd=str(tree), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout.decode()[-3000:]
    check = ("import shmkit, os\n"
             "assert shmkit.__file__.startswith(%r), shmkit.__file__\n"
             "n = '/shmkit-py-venv-%%d' %% os.getpid()\n"
             "with shmkit.Channel(n, 'consumer', create=True) as c, "
             "shmkit.Channel(n, 'producer') as p:\n"
             "    p.send(b'installed'); assert c.recv(1) == b'installed'\n"
             "shmkit.unlink(n)\nprint('ok', shmkit.library_version)\n") % str(env_dir)
    r = subprocess.run([py, "-c", check], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout.decode()
    assert r.stdout.decode().startswith("ok ")
