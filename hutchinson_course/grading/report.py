"""Write the results: one JSON file per notebook, and the class's grades.csv."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

CSV_NAME = "grades.csv"


def json_names(notebooks: list[Path]) -> list[str]:
    """``<stem>.json`` for each notebook; stems that repeat (a/jit.ipynb, b/jit.ipynb) get -2, -3..."""
    seen: Counter[str] = Counter()
    names = []
    for notebook in notebooks:
        seen[notebook.stem] += 1
        suffix = f"-{seen[notebook.stem]}" if seen[notebook.stem] > 1 else ""
        names.append(f"{notebook.stem}{suffix}.json")
    return names


# Messages quote the learner's code and exceptions, which may hold text UTF-8 cannot encode.
_ENCODING = {"encoding": "utf-8", "errors": "backslashreplace"}


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", **_ENCODING)


def write_csv(path: Path, results: list[dict[str, Any]]) -> None:
    """One row per notebook: notebook, total, max, <id>_points and <id>_status of each exercise, error."""
    ids = list(dict.fromkeys(i for result in results for i in result["exercises"]))
    columns = ["notebook", "total", "max"] + [f"{i}_{field}" for i in ids for field in ("points", "status")]
    with path.open("w", newline="", **_ENCODING) as file:
        writer = csv.DictWriter(file, fieldnames=columns + ["error"])
        writer.writeheader()
        for result in results:
            row = {"notebook": result["notebook"], "total": result["total"], "max": result["max"],
                   "error": result["error"] or ""}
            for i, exercise in result["exercises"].items():
                row[f"{i}_points"] = exercise["points"]
                row[f"{i}_status"] = exercise["status"]
            writer.writerow(row)
