"""Hidden tests: one module per exercise set, run by the grader and never shown to learners.

In ``hidden/<set>.py``, each function ``test_<exercise id>_<what>(answer)`` receives the
learner's object and fails by raising ``Incorrect`` (from ``hutchinson_course.exercises``, with
a message the learner would understand) or ``AssertionError``; any other exception counts as an
error in the learner's code. An instructor's private file (``hutchinson-grade --tests``) follows
the same convention and adds its tests to these.
"""
