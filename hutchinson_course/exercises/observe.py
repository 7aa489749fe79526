"""Where a check meets the learner's code: ``observe(lambda: ...)``.

Every call into the learner's answer, and every look at it (``callable(fn)``, ``fn.lower``), is
wrapped in ``observe``. The checks then run three ways, with the same code and the same verdicts:

- **In the notebook** (``q1.check()``), ``observe`` runs the thunk and returns what it returned,
  after a round trip through the same plain-data encoding the grader uses, so the learner sees
  exactly what the grader will decide.
- **Collecting**, in the learner's kernel at the end of a graded run: the same, and each value (or
  exception) is also written to a ``Tape``, in order, labelled with where in the checks it was
  observed. A tape holds only data: JSON, and arrays in an ``.npz`` read with ``allow_pickle=False``.
- **Judging**, in the grader's own process, which never imports or unpickles anything of the
  learner's: the thunks are not run; ``observe`` hands back the taped values in order. So the
  verdict is decided by the course's code alone: a notebook can only change what its functions
  return for the inputs the checks give them, never the checks.

What can cross: None, bools, ints, floats, complex numbers, strings, tuples, lists, dicts, NumPy
and JAX arrays (typed PRNG keys included), NumPy scalars and dtypes. Anything else arrives as an
``Opaque`` object that only says its type and repr; an exception arrives as the same built-in,
JAX or course exception (or a ``LearnerRaised``), with its message and the learner's line.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import io
import json
import linecache
import math
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .outcome import Incorrect, NotAttempted

STRING_LIMIT = 100_000  # characters of one string or message kept; a longer one is cut, saying so
NODE_LIMIT = 200_000  # values in one observation; beyond that it arrives as Opaque


class ReplayError(Exception):
    """The tape does not match the checks being judged (or the answer was used outside ``observe``)."""


class OutOfTime(BaseException):
    """A test ran past its time limit while collecting; a BaseException, so that the learner's
    ``except Exception:`` cannot swallow it."""


@dataclasses.dataclass(frozen=True)
class Opaque:
    """What arrives of an object that is not plain data: its type's name and its repr."""

    type_name: str
    text: str

    def __repr__(self) -> str:
        return self.text


class LearnerRaised(Exception):
    """An exception of a type the judge does not rebuild (the learner's own class, say)."""

    def __init__(self, type_name: str, message: str):
        super().__init__(message)
        self.learner_type = type_name


def type_name(value: Any) -> str:
    """The name of the value's type, as the learner would say it (an Opaque's recorded one)."""
    return value.type_name if isinstance(value, Opaque) else type(value).__name__


# ---------------------------------------------------------------------------------------------
# The three ways observe runs.

@dataclasses.dataclass
class Tape:
    """The observations of one test, in order: ``entries`` (JSON) and ``arrays`` (by name).
    ``ended`` says how the test ended while collecting: "done", or "timed out"."""

    entries: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    ended: str = "done"
    read: int = 0  # entries handed back so far, when judging

    def to_json(self) -> dict[str, Any]:
        return {"entries": self.entries, "ended": self.ended}

    @classmethod
    def from_json(cls, data: Any, arrays: dict[str, np.ndarray]) -> "Tape":
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise ReplayError("a tape should be an object with a list of entries")
        return cls(list(data["entries"]), arrays, str(data.get("ended", "done")))


_tape: Tape | None = None
_judging = False


@contextlib.contextmanager
def _taping(tape: Tape, replay: bool) -> Iterator[Tape]:
    global _tape, _judging
    before = _tape, _judging
    _tape, _judging = tape, replay
    try:
        yield tape
    finally:
        _tape, _judging = before


def collecting(tape: Tape) -> contextlib.AbstractContextManager[Tape]:
    """Run the thunks, and write what they return to ``tape``."""
    return _taping(tape, replay=False)


def judging(tape: Tape) -> contextlib.AbstractContextManager[Tape]:
    """Do not run the thunks: hand back what ``tape`` holds, in order."""
    return _taping(tape, replay=True)


def observe(thunk: Callable[[], Any]) -> Any:
    """What ``thunk()`` returns (or raises), as plain data: see the module's docstring."""
    label = _label(thunk)
    if _judging:
        return _replay(_tape, label)
    arrays: dict[str, np.ndarray] = {}
    try:
        value = thunk()
        try:
            entry = {"at": label, "value": _encode(value, arrays, [0])}
        except _TooLarge:
            arrays.clear()
            entry = {"at": label, "value": _opaque(value)}
    except (KeyboardInterrupt, OutOfTime):
        raise
    except BaseException as error:  # SystemExit too: a learner's exit() is their answer's failure
        entry = {"at": label, "raised": _encode_exception(error)}
    if _tape is not None:
        names = {name: f"a{len(_tape.arrays) + i}" for i, name in enumerate(arrays)}
        _tape.arrays.update({names[name]: array for name, array in arrays.items()})
        entry = _renamed(entry, names)
        _tape.entries.append(entry)
    return _settle(entry, arrays if _tape is None else _tape.arrays)


def _label(thunk: Callable[[], Any]) -> str:
    code = getattr(thunk, "__code__", None)
    return f"{Path(code.co_filename).name}:{code.co_firstlineno}" if code else type(thunk).__name__


def _replay(tape: Tape | None, label: str) -> Any:
    if tape is None:
        raise ReplayError("observe() was called while judging, with no tape")
    if tape.read >= len(tape.entries):
        if tape.ended == "timed out":
            raise OutOfTime
        raise ReplayError(f"the tape ends before the observation at {label}")
    entry = tape.entries[tape.read]
    tape.read += 1
    if not isinstance(entry, dict) or entry.get("at") != label:
        found = entry.get("at") if isinstance(entry, dict) else entry
        raise ReplayError(f"the tape's observation {tape.read} was made at {found!r}, not at {label!r}")
    return _settle(entry, tape.arrays)


def _settle(entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    if "raised" in entry:
        raise _decode_exception(entry["raised"])
    return _decode(entry.get("value"), arrays)


# ---------------------------------------------------------------------------------------------
# Plain data, both ways.

def _encode(value: Any, arrays: dict[str, np.ndarray], count: list[int]) -> Any:
    count[0] += 1
    if count[0] > NODE_LIMIT:
        raise _TooLarge
    if value is None or type(value) in (bool, int, str):
        return _cut(value) if type(value) is str else value
    if type(value) is float:
        return value if math.isfinite(value) else {"$": "float", "text": repr(value)}
    if type(value) is complex:
        return {"$": "complex", "real": _encode(value.real, arrays, count),
                "imag": _encode(value.imag, arrays, count)}
    if value is Ellipsis:
        return {"$": "ellipsis"}
    array = _as_array(value)
    if array is not None:
        kind, data, extra = array
        name = f"a{len(arrays)}"
        arrays[name] = data
        return {"$": kind, "ref": name, **extra}
    if isinstance(value, np.dtype):
        return {"$": "dtype", "name": value.str if value.kind == "V" else value.name}
    if isinstance(value, (tuple, list)):
        items = [_encode(item, arrays, count) for item in builtins.tuple(value)]
        return {"$": "tuple" if isinstance(value, tuple) else "list", "items": items}
    if type(value) is dict:
        return {"$": "dict", "items": [[_encode(k, arrays, count), _encode(v, arrays, count)]
                                      for k, v in list(value.items())]}
    return _opaque(value)


class _TooLarge(Exception):
    pass


def _opaque(value: Any) -> dict[str, Any]:
    try:
        text = repr(value)
    except Exception as error:
        text = f"<{type(value).__name__} object whose repr raised {type(error).__name__}>"
    if type(text) is not str:
        text = f"<{type(value).__name__} object>"
    return {"$": "object", "type": _cut(type(value).__name__, 200), "repr": _cut(text, 2000)}


def _as_array(value: Any) -> tuple[str, np.ndarray, dict[str, Any]] | None:
    """(kind, NumPy data, what else to record) for an array or NumPy scalar, else None."""
    import jax

    if isinstance(value, jax.Array):
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            return "key", np.asarray(jax.random.key_data(value)), {"impl": str(jax.random.key_impl(value))}
        data = np.asarray(value)
        return ("jax", data, {}) if data.dtype != object else None
    if type(value) is np.ndarray or isinstance(value, np.generic):
        data = np.asarray(value)
        if data.dtype == object:
            return None
        return ("numpy scalar" if isinstance(value, np.generic) else "numpy"), np.array(data), {}
    return None


def _decode(data: Any, arrays: dict[str, np.ndarray]) -> Any:
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:  # not written by _encode: a tape that was changed
        raise ReplayError("a tape's value is a bare list")
    tag = data.get("$") if type(data) is dict else None
    if tag in ("tuple", "list"):
        items = [_decode(item, arrays) for item in data["items"]]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict":
        return {_hashable(_decode(k, arrays)): _decode(v, arrays) for k, v in data["items"]}
    if tag == "float":
        return float(data["text"])
    if tag == "complex":
        return complex(_decode(data["real"], arrays), _decode(data["imag"], arrays))
    if tag == "ellipsis":
        return Ellipsis
    if tag == "dtype":
        return np.dtype(str(data["name"]))
    if tag == "object":
        return Opaque(str(data["type"]), str(data["repr"]))
    if tag in ("jax", "numpy", "numpy scalar", "key"):
        array = arrays.get(str(data["ref"]))
        if array is None:
            raise ReplayError(f"a tape refers to an array {data['ref']!r} it does not hold")
        if tag == "numpy":
            return array.copy()
        if tag == "numpy scalar":
            return array[()]
        import jax
        import jax.numpy as jnp

        if tag == "key":
            return jax.random.wrap_key_data(jnp.asarray(array), impl=str(data["impl"]))
        return jnp.asarray(array)
    raise ReplayError(f"a tape holds a value tagged {tag!r}")


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        return Opaque(type_name(key), repr(key))
    return key


def _renamed(entry: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``entry`` with its array references renamed (to their names in the tape)."""
    def walk(data):
        if type(data) is dict:
            if data.get("$") in ("jax", "numpy", "numpy scalar", "key"):
                return {**data, "ref": names[data["ref"]]}
            return {k: walk(v) for k, v in data.items()}
        if type(data) is list:
            return [walk(item) for item in data]
        return data
    return walk(entry)


def _cut(text: str, limit: int = STRING_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [cut: {len(text):,} characters in all]"


# ---------------------------------------------------------------------------------------------
# Exceptions, both ways.

def _rebuildable() -> dict[str, type[BaseException]]:
    """The exception classes a judge rebuilds by name: Python's, JAX's and the course's."""
    import jax

    classes = [c for c in vars(builtins).values() if isinstance(c, type) and issubclass(c, Exception)]
    classes += [c for c in vars(jax.errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    classes += [Incorrect, NotAttempted]
    return {_qualified(c): c for c in classes}


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


_REBUILDABLE: dict[str, type[BaseException]] | None = None


def _classes() -> dict[str, type[BaseException]]:
    global _REBUILDABLE
    if _REBUILDABLE is None:
        _REBUILDABLE = _rebuildable()
    return _REBUILDABLE


def _encode_exception(error: BaseException) -> dict[str, Any]:
    try:
        message = str(error)
    except Exception:
        message = "<its message could not be read>"
    if type(message) is not str:
        message = "<its message is not a string>"
    known = _classes()
    base = next((_qualified(c) for c in type(error).__mro__ if _qualified(c) in known), None)
    args = error.args if isinstance(error.args, tuple) else ()
    plain = len(args) <= 8 and all(type(a) in (str, int, float, bool) or a is None for a in args)
    return {"type": _cut(type(error).__name__, 200), "class": base, "message": _cut(message),
            "args": [_cut(a) if type(a) is str else a for a in args] if plain else None,
            "where": learner_line(error.__traceback__)}


def _decode_exception(data: Any) -> BaseException:
    if type(data) is not dict:
        raise ReplayError("a tape's exception is not an object")
    message, type_name_ = str(data.get("message", "")), str(data.get("type", "Exception"))
    cls = _classes().get(str(data.get("class")))
    error: BaseException
    try:
        if cls is None:
            raise TypeError
        error = cls.__new__(cls)
        args = data.get("args")
        plain = type(args) is list and all(type(a) in (str, int, float, bool) or a is None for a in args)
        error.args = tuple(args) if plain else (message,)
        str(error)  # a class whose str() needs more than its args is not rebuilt
    except Exception:
        error = LearnerRaised(type_name_, message)
    error.learner_type = type_name_
    error.learner_where = data.get("where") if isinstance(data.get("where"), str) else None
    return error


def learner_line(tb) -> str | None:
    """Where the learner's code was when an exception passed through it: " (line N: `source`)"
    for the innermost frame that is not a library's (JAX's own `raise` is not what they wrote)."""
    from .exercise import _is_library

    try:
        frames = [f for f in traceback.extract_tb(tb) if not _is_library(f.filename)]
    except Exception:
        return None
    if not frames:
        return None
    frame = frames[-1]
    line = (frame.line or linecache.getline(frame.filename, frame.lineno) or "").strip()
    return f" (line {frame.lineno}: `{line[:200]}`)" if line else f" (line {frame.lineno})"


# ---------------------------------------------------------------------------------------------
# Tapes on disk: JSON and npz, nothing that can carry code.

def write_tapes(path: Path, tapes: dict[str, Tape], extra: dict[str, Any] | None = None) -> None:
    """``path`` (.json) and ``path`` with suffix .npz: the tapes of one exercise's tests."""
    arrays, data = {}, {}
    for test_name, tape in tapes.items():
        prefix = f"t{len(data)}_"
        names = {name: prefix + name for name in tape.arrays}
        arrays.update({names[name]: array for name, array in tape.arrays.items()})
        data[test_name] = {"ended": tape.ended, "entries": [_renamed(e, names) for e in tape.entries]}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _write_whole(path.with_suffix(".npz"), buffer.getvalue())
    _write_whole(path, json.dumps({"tapes": data, **(extra or {})}).encode())


def read_tapes(path: Path, size_limit: int) -> tuple[dict[str, Tape], dict[str, Any]]:
    """The tapes written by ``write_tapes``, and the rest of the JSON; OSError or ValueError when
    the files are missing, too large or malformed (a tape is the learner's process's word)."""
    npz = path.with_suffix(".npz")
    if path.stat().st_size + npz.stat().st_size > size_limit:
        raise ValueError(f"the answers' record is larger than {size_limit / 2**20:g} MB")
    data = json.loads(path.read_text(encoding="utf-8"))
    with np.load(npz, allow_pickle=False) as loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    if not isinstance(data, dict) or not isinstance(data.get("tapes"), dict):
        raise ValueError("the answers' record has no tapes")
    return {str(name): Tape.from_json(tape, arrays) for name, tape in data["tapes"].items()}, data


def _write_whole(path: Path, data: bytes) -> None:
    # Written whole or not at all: a kernel that dies mid-write leaves no truncated file.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


class Absent:
    """Stands for the learner's answer where the verdicts are judged: the answer is not there, only
    the record of what it returned. Any use of it outside ``observe`` is a mistake in a test."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def _misused(self, *args, **kwargs):
        raise ReplayError(f"a test used `{object.__getattribute__(self, '_name')}` outside observe(...): "
                          "wrap every call to the answer, and every look at it, in observe(lambda: ...)")

    __call__ = __getattr__ = __setattr__ = __getitem__ = __iter__ = __len__ = __bool__ = _misused
    __eq__ = __hash__ = __int__ = __float__ = __index__ = _misused

    def __repr__(self) -> str:
        return f"<the answer `{object.__getattribute__(self, '_name')}`, judged from its record>"
