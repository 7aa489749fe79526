"""Course package for "JAX transformations, one estimator at a time".

Its jobs, one subpackage each:

- ``estimators``: the reference Hutchinson estimators the chapters build, layer by layer;
- ``exercises``: the graded exercises' in-notebook checks, hints and solutions;
- ``grading``: the grader that scores finished exercise notebooks with the checks and grader tests;
- ``widgets``: the shape and memory widgets the chapters show;
- ``authoring``: tools that generate exercise notebooks and re-execute notebooks.
"""

__version__ = "0.1.0"
