"""count_compilations sees each new static value compile once, and cache hits compile nothing."""

import functools

import jax
import jax.numpy as jnp

from hutchinson_course.compilations import compile_together, count_compilations


def test_counts_new_signatures_only():
    @functools.partial(jax.jit, static_argnames="n")
    def power(x, n):
        return x**n

    x, y, z = jnp.ones(3), jnp.zeros(3), jnp.ones(4)  # eager ops compile too: keep them outside
    with count_compilations() as first:
        power(x, n=2)
    with count_compilations() as cached:
        power(x, n=2)
        power(y, n=2)
    with count_compilations() as new:
        power(x, n=3)
        power(z, n=2)
    assert (first.traces, first.compilations) == (1, 1)
    assert (cached.traces, cached.compilations) == (0, 0)
    assert (new.traces, new.compilations) == (2, 2)


def test_listener_is_removed_after_the_block():
    with count_compilations() as count:
        pass
    jax.jit(lambda v: v * 7.0)(jnp.ones(2))
    assert count.compilations == 0


def test_programs_compiled_together_are_the_programs_compiled_alone():
    square = jax.jit(lambda v, n: v ** n, static_argnames="n")
    lowered = [square.lower(jnp.ones(3), n=2), square.lower(jnp.ones(4), n=3)]
    first, second = compile_together(lowered)
    assert jnp.array_equal(first(jnp.full(3, 2.0)), jnp.full(3, 4.0))
    assert jnp.array_equal(second(jnp.full(4, 2.0)), jnp.full(4, 8.0))
    assert compile_together([]) == []
