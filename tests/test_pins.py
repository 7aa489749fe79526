"""One set of pins: requirements.txt, mirrored by environment.yml, satisfying pyproject's ranges."""

import pathlib

import yaml
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]


def requirement_pins():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_requirement_is_pinned_exactly():
    for line in requirement_pins():
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not an exact pin: {line}"


def test_environment_yml_carries_the_same_pins():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert sorted(pip_section) == sorted(requirement_pins())
    assert "python=3.11" in environment["dependencies"]


def test_the_pins_satisfy_the_package_ranges():
    pins = {Requirement(line).name.lower(): Requirement(line) for line in requirement_pins()}
    project = __import__("tomllib").loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        needed = Requirement(line)
        pinned = pins.get(needed.name.lower())
        assert pinned is not None, f"{needed.name} is a dependency of the package but not pinned"
        version = next(iter(pinned.specifier)).version
        assert needed.specifier.contains(version), f"pinned {pinned} does not satisfy {needed}"


def test_jupyterlab_is_pinned_for_make_lab():
    pins = {Requirement(line).name.lower() for line in requirement_pins()}
    assert {"jupyterlab", "ipykernel"} <= pins, "`make lab` needs JupyterLab and ipykernel pinned"
