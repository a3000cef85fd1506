"""`pip install --no-build-isolation ./clients/python` into a virtual environment (PEP 668 forbids
Debian's own Python; PyPI is not reachable, so the build uses the system's setuptools)."""

import os
import subprocess
import sys
import tempfile
import unittest

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class InstallTest(unittest.TestCase):
    def test_pip_install_into_a_venv_and_import(self):
        with tempfile.TemporaryDirectory() as tmp:
            venv = os.path.join(tmp, "venv")
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True, capture_output=True, timeout=120)
            python = os.path.join(venv, "bin", "python")
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
            # A copy of the sources: the build writes *.egg-info and build/ beside them.
            src = os.path.join(tmp, "src")
            subprocess.run(["cp", "-r", PROJECT, src], check=True)
            subprocess.run(["rm", "-rf", os.path.join(src, "tests")], check=True)
            pip = subprocess.run(
                [python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-deps", src],
                capture_output=True, text=True, timeout=180, env=env, cwd=tmp,
            )
            self.assertEqual(pip.returncode, 0, pip.stdout + pip.stderr)
            probe = subprocess.run(
                [python, "-c", "import ferry, os; print(ferry.__file__); print(os.path.exists(os.path.join(os.path.dirname(ferry.__file__), 'py.typed'))); print(ferry.Client.__name__, ferry.Executor.__mro__[1].__module__)"],
                capture_output=True, text=True, timeout=60, env=env, cwd=tmp,
            )
            self.assertEqual(probe.returncode, 0, probe.stderr)
            location, typed, names = probe.stdout.splitlines()
            self.assertTrue(location.startswith(venv) and "site-packages" in location, location)
            self.assertEqual(typed, "True")
            self.assertEqual(names, "Client concurrent.futures._base")


if __name__ == "__main__":
    unittest.main()
