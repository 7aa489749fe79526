"""Settings for the whole suite, made before any test imports jax (XLA reads XLA_FLAGS once).

- Eight simulated CPU devices, as the pmap chapter's setup cell asks for, here and in every process
  the tests start. Computations that do not ask for a device run on device 0 as before.
- In the test processes only, XLA's CPU code is generated at optimization level 0: it compiles
  about three times faster (measured on the estimator tests: 125 s against 43 s), and compiling is
  most of what the unit tests spend. They check values, shapes, programs and memory, not speed.
  The processes the tests start (notebook kernels under nbval, the website build, the grader, the
  Colab test, the multi-process workers) run at XLA's default level, as a reader's and a learner's do.
- The slowest test files start first, one per worker, so that neither ends the run alone.
"""

import os

DEVICE_FLAG = "--xla_force_host_platform_device_count=8"
FAST_COMPILE_FLAG = "--xla_backend_optimization_level=0"

if DEVICE_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + DEVICE_FLAG).strip()
_children_flags = os.environ["XLA_FLAGS"]
os.environ["XLA_FLAGS"] = f"{_children_flags} {FAST_COMPILE_FLAG}"
import jax  # noqa: E402 - XLA reads the flags when its CPU backend starts, here

jax.devices()
os.environ["XLA_FLAGS"] = _children_flags  # what the processes the tests start inherit

SLOWEST_FIRST = ("test_site.py", "test_colab.py", "test_grader.py", "test_grading_all_sets.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: the order inside each file, and of the other files, is kept
