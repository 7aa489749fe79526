"""The capstone: the course's estimator inside a continuous normalizing flow over sets of points.

- ``data``: 2-D point sets made in code (rings, ellipses, two moons), one context per set, padded;
- ``training``: the field fitted by flow matching (optax);
- ``likelihood``: log-likelihoods by solving the flow's ODE (diffrax), the divergence exact or
  estimated by the course's memory-aware estimator;
- ``hutchplusplus``: Hutch++, a trace estimator that beats Hutchinson when the spectrum decays.
"""
