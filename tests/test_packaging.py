"""Issue 19: dependencies are tested ranges, the lowest versions are what `make test-min` runs,
and the lock file the front door installs satisfies every range."""
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(path: Path) -> dict:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (version,) = [spec.version for spec in requirement.specifier if spec.operator == "=="]
            found[requirement.name.lower().replace("_", "-")] = version
    return found


def runtime_requirements() -> list[Requirement]:
    return [Requirement(text) for text in PROJECT["dependencies"]]


def test_runtime_dependencies_are_ranges_with_a_lower_bound():
    for requirement in runtime_requirements():
        operators = {spec.operator for spec in requirement.specifier}
        assert "==" not in operators and ">=" in operators, str(requirement)


def test_requirements_min_pins_exactly_the_lower_bounds():
    lowest = pins(ROOT / "requirements-min.txt")
    declared = {r.name.lower(): [s.version for s in r.specifier if s.operator == ">="][0]
                for r in runtime_requirements()}
    assert lowest == declared


def test_the_lock_satisfies_every_declared_range():
    locked = pins(ROOT / "requirements.lock")
    extras = PROJECT["optional-dependencies"]
    assert {"dev", "notebooks", "gpu"} <= set(extras)
    for text in PROJECT["dependencies"] + extras["dev"] + extras["notebooks"]:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        assert name in locked, f"{name} is not in requirements.lock"
        assert requirement.specifier.contains(locked[name]), (name, locked[name])


def test_the_installed_versions_are_in_range():
    # Whatever this environment is (the lock's, or test-min's lowest versions), it is in range.
    for requirement in runtime_requirements():
        assert requirement.specifier.contains(metadata.version(requirement.name)), str(requirement)
