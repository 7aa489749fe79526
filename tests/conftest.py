"""Settings for the whole suite, made before any test imports jax (XLA reads XLA_FLAGS once).

- Eight simulated CPU devices, as the pmap chapter's setup cell asks for. Computations that do not
  ask for a device run on device 0 as before.
- XLA's CPU code generated at optimization level 0: it compiles about three times faster
  (measured on this suite's estimator tests: 125 s against 43 s), and compiling is most of what the
  tests spend. The tests check values, shapes, programs and memory, not speed; every notebook's
  outputs (nbval) are the same at both levels. The processes the tests start inherit the flag,
  except the two that stand for a reader and a learner: the website build (tests/test_site.py,
  whose executed notebooks `make book` reuses) and the Colab test run at XLA's default level.
- The slowest test files start first, one per worker, so that neither ends the run alone.
"""

import os

DEVICE_FLAG = "--xla_force_host_platform_device_count=8"
FAST_COMPILE_FLAG = "--xla_backend_optimization_level=0"
for _flag in (DEVICE_FLAG, FAST_COMPILE_FLAG):
    if _flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()

SLOWEST_FIRST = ("test_site.py", "test_colab.py", "test_grader.py", "test_grading_all_sets.py")


def default_level_environment() -> dict[str, str]:
    """os.environ without FAST_COMPILE_FLAG: for processes that must run as a reader's or learner's do."""
    flags = " ".join(flag for flag in os.environ.get("XLA_FLAGS", "").split() if flag != FAST_COMPILE_FLAG)
    return {**os.environ, "XLA_FLAGS": flags}


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: the order inside each file, and of the other files, is kept
