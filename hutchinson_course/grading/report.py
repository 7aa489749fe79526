"""Write the results: one JSON file and one feedback file per notebook, the class's grades.csv,
and a class report (report.md with report.png): per exercise, how the scores spread and the
messages most often given."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

CSV_NAME = "grades.csv"
REPORT_NAME = "report.md"
PLOT_NAME = "report.png"
FEEDBACK_DIR = "feedback"
MESSAGE_LIMIT = 2000  # characters of a message that are kept: a learner's exception can be megabytes


def cap(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text``, cut to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [... cut by the grader: {len(text) - limit} more characters]"


def json_names(stems: Iterable[str]) -> list[str]:
    """``<stem>.json`` for each notebook; stems that repeat (two folders' jit.ipynb given as files)
    get -2, -3..."""
    seen: Counter[str] = Counter()
    names = []
    for stem in stems:
        seen[stem] += 1
        suffix = f"-{seen[stem]}" if seen[stem] > 1 else ""
        names.append(f"{stem}{suffix}.json")
    return names


# Messages quote the learner's code and exceptions, which may hold text UTF-8 cannot encode.
_ENCODING = {"encoding": "utf-8", "errors": "backslashreplace"}


def write_json(path: Path, result: dict[str, Any]) -> None:
    # Written whole or not at all, so that --resume never reads half a result.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", **_ENCODING)
    partial.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def problems(result: dict[str, Any]) -> str:
    """The notebook-wide problems of a result, in one line: its error, then its notes."""
    return "; ".join(([result["error"]] if result["error"] else []) + list(result.get("notes", ())))


def write_csv(path: Path, results: list[dict[str, Any]]) -> None:
    """One row per notebook: notebook, total, max, <id>_points and <id>_status of each exercise, error."""
    ids = list(dict.fromkeys(i for result in results for i in result["exercises"]))
    columns = ["notebook", "total", "max"] + [f"{i}_{field}" for i in ids for field in ("points", "status")]
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="", **_ENCODING) as file:
        writer = csv.DictWriter(file, fieldnames=columns + ["error"])
        writer.writeheader()
        for result in results:
            row = {"notebook": result["notebook"], "total": result["total"], "max": result["max"],
                   "error": problems(result)}
            for i, exercise in result["exercises"].items():
                row[f"{i}_points"] = exercise["points"]
                row[f"{i}_status"] = exercise["status"]
            writer.writerow(row)
    partial.replace(path)


def feedback(result: dict[str, Any]) -> str:
    """What a learner reads: each exercise's score, and what failed and why (never a test's source)."""
    lines = [f"# Feedback on {result['notebook']}", "",
             f"Exercise set: {result['exercise_set'] or 'unknown'}. Score: {result['total']:g} of {result['max']:g}.", ""]
    if problems(result):
        lines += [f"About the notebook as a whole: {problems(result)}", ""]
    for exercise_id, exercise in result["exercises"].items():
        tests = exercise["tests"]
        passed = sum(test["status"] == "passed" for test in tests)
        lines += [f"## {exercise_id}: {exercise['status']}, {exercise['points']:g} of {exercise['max_points']:g}", "",
                  f"{passed} of {len(tests)} tests passed (the check in the notebook and the grader tests)."]
        for test in tests:
            if test["status"] != "passed":
                lines.append(f"- {test['status']}: {test['message']}")
        lines.append("")
    lines.append(result["scoring"])
    return "\n".join(lines) + "\n"


def _common_form(message: str) -> str:
    # Messages differ by the numbers in them (values found, sizes): group them without.
    return re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "N", message.splitlines()[0] if message else "")[:160]


def class_summary(results: list[dict[str, Any]], skipped: list[tuple[str, str]]) -> dict[str, Any]:
    """Per exercise: max, mean, score counts, statuses and the commonest messages of tests that failed."""
    exercises: dict[str, dict[str, Any]] = {}
    for result in results:
        for exercise_id, exercise in result["exercises"].items():
            key = f"{result['exercise_set']}.{exercise_id}"
            entry = exercises.setdefault(key, {"max_points": exercise["max_points"], "points": [],
                                               "statuses": Counter(), "messages": Counter()})
            entry["points"].append(exercise["points"])
            entry["statuses"][exercise["status"]] += 1
            for test in exercise["tests"]:
                if test["status"] not in ("passed", "not attempted"):
                    entry["messages"][_common_form(test["message"])] += 1
    return {"notebooks": len(results), "exercises": exercises, "skipped": skipped,
            "problems": [(r["notebook"], problems(r)) for r in results if problems(r)]}


def write_class_report(out_dir: Path, results: list[dict[str, Any]], skipped: list[tuple[str, str]]) -> None:
    summary = class_summary(results, skipped)
    plotted = _plot(out_dir / PLOT_NAME, summary["exercises"])

    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["# Class report", "",
             f"{summary['notebooks']} notebooks graded; the grades are in `{CSV_NAME}`, the feedback for each "
             f"learner in `{FEEDBACK_DIR}/`. Each exercise is scored on the check in the notebook and the grader "
             "tests (and the instructor's private tests, when given).", ""]
    if plotted:
        lines += [f"![Scores per exercise]({PLOT_NAME})", ""]
    lines += ["| exercise | max | mean | scores (count) | statuses |", "| --- | --- | --- | --- | --- |"]
    for key, entry in summary["exercises"].items():
        points = entry["points"]
        counts = ", ".join(f"{p:g}: {n}" for p, n in sorted(Counter(points).items()))
        statuses = ", ".join(f"{s}: {n}" for s, n in entry["statuses"].most_common())
        lines.append(f"| {key} | {entry['max_points']:g} | {sum(points) / len(points):.2f} | {counts} | {statuses} |")
    lines += ["", "## The commonest failure messages", "", "| exercise | notebooks | message |", "| --- | --- | --- |"]
    for key, entry in summary["exercises"].items():
        for message, count in entry["messages"].most_common(3):
            lines.append(f"| {key} | {count} | {cell(message)} |")
    if summary["problems"]:
        lines += ["", "## Notebooks with problems as a whole", "", "| notebook | problem |", "| --- | --- |"]
        lines += [f"| {cell(name)} | {cell(cap(problem, 300))} |" for name, problem in summary["problems"]]
    if skipped:
        lines += ["", "## Files skipped", "", "| file | why |", "| --- | --- |"]
        lines += [f"| {cell(name)} | {cell(why)} |" for name, why in skipped]
    (out_dir / REPORT_NAME).write_text("\n".join(lines) + "\n", **_ENCODING)


def _plot(path: Path, exercises: dict[str, dict[str, Any]]) -> bool:
    """A histogram of the scores of each exercise, as a fraction of its maximum."""
    if not exercises:
        return False
    import matplotlib

    matplotlib.use("Agg")  # no display on a grading machine
    import matplotlib.pyplot as plt

    columns = min(len(exercises), 4)
    rows = -(-len(exercises) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2.4 * rows), squeeze=False)
    for ax in axes.flat[len(exercises):]:
        ax.axis("off")
    for ax, (key, entry) in zip(axes.flat, exercises.items()):
        counts = Counter(entry["points"])
        ax.bar([f"{p:g}" for p in sorted(counts)], [counts[p] for p in sorted(counts)], color="tab:blue")
        ax.set_title(f"{key} (max {entry['max_points']:g})", fontsize=9)
        ax.set_xlabel("points", fontsize=8)
        ax.set_ylabel("notebooks", fontsize=8)
        ax.tick_params(labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
