"""examples/notebook.ipynb: valid nbformat 4, committed without outputs, and its code cells, run in
order as one script, work against the live stack (see live.py)."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from .live import live_client

CLIENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(CLIENT)), "examples", "notebook.ipynb")


class NotebookTest(unittest.TestCase):
    def test_valid_and_cleared(self):
        import nbformat

        nb = nbformat.read(NOTEBOOK, as_version=4)
        nbformat.validate(nb)
        self.assertEqual(nb.nbformat, 4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        self.assertGreater(len(code), 3)
        for cell in code:
            self.assertEqual((cell.outputs, cell.execution_count), ([], None), cell.source[:60])

    def test_its_code_cells_run_against_the_stack(self):
        live_client().close()  # fails with what to set when there is no stack
        with open(NOTEBOOK, encoding="utf-8") as f:
            nb = json.load(f)
        # A file, not exec(): the client sends functions' source, which inspect reads from the file
        # (in Jupyter, from the cell).
        source = "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
            script.write(source + "\n")
        self.addCleanup(os.unlink, script.name)
        env = {**os.environ, "PYTHONPATH": CLIENT}
        run = subprocess.run([sys.executable, script.name], capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(run.returncode, 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}")


if __name__ == "__main__":
    unittest.main()
