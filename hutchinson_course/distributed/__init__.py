"""The estimator across several JAX processes, as on a cluster, run on one machine.

- ``rows``: which rows of the global batch each process holds, and the batch built row by row;
- ``worker``: the program every process runs (``python -m hutchinson_course.distributed.worker``);
- ``reference``: the same problem on one process, and the tolerance for its mean;
- ``launch``: ``run_processes``, which starts the workers on localhost from a notebook and
  collects what they wrote, or says which one failed or hung and what it printed.
"""

from .launch import WorkerError, run_processes
from .rows import batch_rows, padded_size, process_rows

__all__ = ["WorkerError", "batch_rows", "padded_size", "process_rows", "run_processes"]
