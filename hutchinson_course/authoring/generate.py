"""Generate the learner's exercise notebook from its single source in solutions/.

Solution regions are marked as otter-grader marks them::

    # BEGIN SOLUTION
    ...code...
    # END SOLUTION

Inside a function body a region becomes ``raise NotImplementedError`` (the checks report
"not attempted"); at the top level it becomes ``name = ...`` for each name it assigns.
Cells tagged ``solution-only`` (demonstrations that call a solved answer) are left out.
The reference solutions that ``q.solution()`` prints are extracted into the package.
"""

from __future__ import annotations

import ast
import copy
import json
import pathlib

import nbformat

from ..exercises import exercise_set, registry

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB_COMMENT = "# YOUR CODE HERE"
SOLUTION_ONLY_TAG = "solution-only"
DATA_DIR = pathlib.Path("hutchinson_course") / "exercises" / "data"  # under the root, like exercises/
_KEPT_METADATA = ("kernelspec", "language_info", "hutchinson_course", "colab")


class SolutionMarkupError(ValueError):
    """A solutions notebook whose solution regions cannot be turned into stubs."""


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace each solution region of a cell's source by its stub."""
    out: list[str] = []
    region: list[str] | None = None
    indent = ""
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if region is not None:
                raise SolutionMarkupError(f"{where}, line {number}: {BEGIN} inside another region")
            region, indent = [], line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if region is None:
                raise SolutionMarkupError(f"{where}, line {number}: {END} without {BEGIN}")
            out.extend(_stub(region, indent, where))
            region = None
        elif region is not None:
            region.append(line)
        else:
            out.append(line)
    if region is not None:
        raise SolutionMarkupError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(out)


def _stub(region: list[str], indent: str, where: str) -> list[str]:
    if indent:
        return [f"{indent}{STUB_COMMENT}", f"{indent}raise NotImplementedError"]
    names = _assigned_names("\n".join(region))
    if not names:
        raise SolutionMarkupError(f"{where}: a top-level solution region must assign a name, "
                                  f"found none in {region!r}")
    return [f"{name} = ...  {STUB_COMMENT}" for name in names]


def _assigned_names(code: str) -> list[str]:
    names = []
    for node in ast.parse(code).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return names


def _defined_names(code: str) -> set[str]:
    tree = ast.parse(code)
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return defined | set(_assigned_names(code))


def has_solution(cell) -> bool:
    return cell.cell_type == "code" and any(line.strip() == BEGIN for line in cell.source.splitlines())


def set_name_of(notebook, path: pathlib.Path) -> str:
    """The exercise set of a solutions notebook: its metadata's, which must be its file's name and a
    set of ``exercises.registry``."""
    name = notebook.metadata.get("hutchinson_course", {}).get("exercise_set")
    if not name:
        raise SolutionMarkupError(f"{path}: notebook metadata needs hutchinson_course.exercise_set")
    if name != path.stem or name not in registry.BY_NAME:
        raise SolutionMarkupError(f"{path}: its exercise_set is {name!r}; expected the file's name, {path.stem!r}, "
                                  f"one of the sets declared in hutchinson_course/exercises/registry.py "
                                  f"({', '.join(registry.BY_NAME)})")
    return name


def set_metadata(solutions, set_name: str) -> dict:
    """The exercise notebook's ``hutchinson_course`` metadata: the set's name and devices from the
    registry, and the compilation budget measured on the solutions notebook."""
    declared = registry.lookup(set_name)
    metadata = {"exercise_set": declared.name}
    if declared.devices is not None:
        metadata["devices"] = declared.devices
    budget = solutions.metadata.get("hutchinson_course", {}).get("compilation_budget")
    if budget is not None:
        metadata["compilation_budget"] = budget
    return metadata


def exercise_notebook(solutions, set_name: str | None = None):
    """The learner version of a solutions notebook: stubs, no outputs, no execution state."""
    learner = copy.deepcopy(solutions)
    learner.metadata = {k: v for k, v in learner.metadata.items() if k in _KEPT_METADATA}
    if set_name is not None:
        learner.metadata["hutchinson_course"] = set_metadata(solutions, set_name)
    learner.cells = [c for c in learner.cells if SOLUTION_ONLY_TAG not in c.metadata.get("tags", [])]
    for index, cell in enumerate(learner.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"cell {index}")
            cell.outputs = []
            cell.execution_count = None
    return learner


def reference_solutions(solutions, set_name: str) -> dict[str, str]:
    """Each exercise's solution: the source of the one marked cell that defines its answer."""
    found: dict[str, str] = {}
    for exercise in exercise_set(set_name):
        cells = [c for c in solutions.cells if has_solution(c) and exercise.answer in _defined_names(c.source)]
        if len(cells) != 1:
            raise SolutionMarkupError(f"exercise {exercise.id} of set {set_name!r}: expected one solution "
                                      f"cell defining `{exercise.answer}`, found {len(cells)}")
        lines = [line for line in cells[0].source.splitlines() if line.strip() not in (BEGIN, END)]
        found[exercise.id] = "\n".join(lines)
    return found


def generated_files(solutions_path: pathlib.Path, root: pathlib.Path) -> dict[pathlib.Path, str]:
    """What generating from one solutions notebook writes under ``root``: path -> text."""
    solutions = nbformat.read(solutions_path, as_version=4)
    set_name = set_name_of(solutions, solutions_path)
    notebook_text = nbformat.writes(exercise_notebook(solutions, set_name)) + "\n"
    data_text = json.dumps(reference_solutions(solutions, set_name), indent=1, ensure_ascii=False) + "\n"
    return {
        root / "exercises" / solutions_path.name: notebook_text,
        root / DATA_DIR / f"{set_name}.solutions.json": data_text,
    }


def generate(root: pathlib.Path, check_only: bool = False) -> list[pathlib.Path]:
    """Write (or, with ``check_only``, list without writing) every generated file that is out of date."""
    stale = []
    for solutions_path in sorted((root / "solutions").glob("*.ipynb")):
        for path, text in generated_files(solutions_path, root).items():
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
                if not check_only:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
    return stale

