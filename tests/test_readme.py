"""The README's Python example runs as printed and prints what its comments say."""
import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs_and_matches_its_comments():
    text = README.read_text()
    example = re.search(r"## Ten lines of Python\n\n```python\n(.*?)```", text, re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, str(README), "exec"), {})
    first, second = printed.getvalue().strip().splitlines()
    start, end = [float(v) for v in re.findall(r"-?\d\.\d+e[-+]\d+", first)]
    assert abs(start + 0.56) < 1e-12 and abs(end) < 1e-3 and first.endswith("ok")
    assert second == "('noise', 'rho', 'seed') (3, 2, 8, 21)"


def test_readme_own_model_example_runs_and_matches_its_comment():
    text = README.read_text()
    example = re.search(r"## Your own model\n.*?```python\n(.*?)```", text, re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, str(README), "exec"), {})
    assert printed.getvalue().strip() == "ok ['lambda_max', 'loss']"
