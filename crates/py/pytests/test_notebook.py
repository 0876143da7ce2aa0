"""The quickstart notebook runs top to bottom (nbclient), so it cannot rot."""

from __future__ import annotations

import pytest

from conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("sb3_contrib")


def test_quickstart_notebook_executes(monkeypatch):
    # The kernel draws with matplotlib's inline backend (PNG outputs).
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(REPO / "examples" / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO / "examples")}}
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "test split: agent" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plots were drawn"
