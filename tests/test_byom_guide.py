"""The "Bring your own model" guide (docs/guides/bring_your_own_model.py) runs top to bottom as a
notebook at quick sizes, the way the site builds it, and shows what it promises."""
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "bring_your_own_model.py"


@pytest.mark.slow
def test_the_bring_your_own_model_guide_runs_and_shows_its_results(tmp_path, site_builder):
    import nbformat

    notebook = nbformat.read(site_builder.execute_guide(GUIDE, tmp_path), as_version=4)
    text = "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.get("outputs", []))
    for name in ("gd", "sgd", "sam"):
        assert f"{name:4s} ok" in text, text
    assert text.count("over 2 seeds") == 4
    assert "matches the recorded lambda_max: True" in text
    assert "after" in text and ("falsified" in text or "holds" in text)
    assert "Traceback" not in text
    assert (tmp_path / "bring_your_own_model_lambda_max.png").stat().st_size > 0
    assert any(output.get("output_type") == "display_data" for cell in notebook.cells
               for output in cell.get("outputs", []))
