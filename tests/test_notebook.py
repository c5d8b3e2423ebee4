"""examples/quickstart.ipynb executes top to bottom (so it never rots)."""

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NB = Path(__file__).parents[1] / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path):
    nb = nbformat.read(NB, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "α =" in text and "member 1" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    print(f"notebook executed in {time.perf_counter() - start:.1f} s")
