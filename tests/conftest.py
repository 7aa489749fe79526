"""Eight simulated CPU devices for every test, as the pmap chapter's setup cell asks for.

XLA reads the flag once, when JAX starts, so it is set here, before any test imports jax.
Computations that do not ask for a device run on device 0 as before.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
