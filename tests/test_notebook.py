"""examples/notebook.ipynb runs in a real Jupyter kernel (nbclient + ipykernel) and shows
what a notebook user expects: the sweep's HTML (verdict, best rows, the curves as a
PNG), a DataFrame, a Figure as a PNG, and a History of a fit made in the notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"


@pytest.fixture(scope="module")
def executed():
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # fmt: skip
    return [c for c in nb.cells if c.cell_type == "code"]


def _data(cell, kind: str) -> list:
    return [o["data"][kind] for o in cell.outputs if kind in o.get("data", {})]


@pytest.mark.slow
def test_the_notebook_runs_without_an_error(executed):
    errors = [o for c in executed for o in c.outputs if o.output_type == "error"]
    assert not errors, [(e.ename, e.evalue) for e in errors]
    assert all(c.execution_count for c in executed)


@pytest.mark.slow
def test_the_sweep_shows_itself_as_html_with_its_curves(executed):
    (html,) = _data(executed[0], "text/html")
    assert "Cheapest best outcome" in html
    assert "<table" in html and "params.patience" in html
    assert 'src="data:image/png;base64,' in html


@pytest.mark.slow
def test_the_dataframe_and_a_figure_show_inline(executed):
    (frame,) = _data(executed[1], "text/html")
    assert "params.patience" in frame and "regret" in frame
    (png,) = _data(executed[2], "image/png")
    assert len(png) > 1000
    text = "".join(o.get("text", "") for o in executed[3].outputs)
    assert "you end with the weights of epoch 5" in text


@pytest.mark.slow
def test_a_history_made_in_the_notebook_is_swept(executed):
    (html,) = _data(executed[4], "text/html")
    assert "callback-replay sweep</b>: 1 run, 36 settings" in html
    assert "<table" in html
