"""The example notebook runs headless on a real Jupyter kernel, as a reader would run it."""

import hashlib
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from fastnum.datasets import FILE_NAMES
from tests.idx_files import write_dataset

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "ch04_numerical_gradient.ipynb"
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def _data_for_the_kernel(tmp_path, rng, monkeypatch):
    """Where the kernel finds MNIST (FASTNUM_DATA_DIR), and any cell to run before the notebook's."""
    if (SHARED_MNIST / FILE_NAMES["train_img"]).is_file():
        monkeypatch.setenv("FASTNUM_DATA_DIR", str(SHARED_MNIST))
        return []
    # no real MNIST on this machine: small learnable files, registered as MNIST's published ones
    folder = tmp_path / "data"
    write_dataset(folder, rng, n_train=600, n_test=200)
    sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.gz")}
    monkeypatch.setenv("FASTNUM_DATA_DIR", str(folder))
    return [nbformat.v4.new_code_cell(
        "from fastnum import datasets\n"
        f"datasets.DATASETS['mnist'] = datasets.DatasetSource(mirrors=(), sha256={sums!r})"
    )]


def test_example_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_example_notebook_runs_on_a_real_kernel(tmp_path, rng, monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    preamble = _data_for_the_kernel(tmp_path, rng, monkeypatch)
    monkeypatch.setenv("FASTNUM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook.cells = preamble + notebook.cells
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError when any cell raises

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    texts = ["".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream") for cell in code]
    trained = next(text for text in texts if "steps: train acc" in text)
    test_acc = float(re.search(r"steps: train acc [\d.]+, test acc (\d\.\d+)", trained).group(1))
    assert test_acc > 0.5  # far above chance (0.1) after two epochs
    training = next(cell for cell in code if "fit(network" in cell.source)
    widgets = [out for out in training.outputs if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert widgets, "fit drew no progress widget in Jupyter"
    last = code[-1].outputs
    assert any("image/png" in out.get("data", {}) for out in last), "the last cell shows no figure"
    check = next(cell for cell in code if "a whole batch of 100" in cell.source)
    assert any(out.output_type == "execute_result" for out in check.outputs)


def test_notebook_file_is_linked_from_the_readme():
    assert "examples/ch04_numerical_gradient.ipynb" in (ROOT / "README.md").read_text()
