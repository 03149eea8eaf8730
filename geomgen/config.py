"""Model hyper-parameters declared once: :class:`ModelConfig` and :func:`param`.

A model declares each hyper-parameter one time, as a field of a
:class:`ModelConfig` subclass: its type (the annotation), default, bounds or
choices and a one-line doc (:func:`param`).  Everything else is derived from
that declaration: validation on construction, the registry's
``default_config``, :func:`geomgen.get_model`'s keyword checks, the JSON schema
that ``geomgen plugins --json`` shows and the tables of the models page of the
documentation.

Example::

    from geomgen.config import PredictorConfig, param

    class SdfConfig(PredictorConfig):
        model_name = "sdf-net"

        hidden: int = param(256, "width of the MLP", ge=1)
        activation: str = param("relu", "hidden activation", choices=("relu", "softplus"))
        widths: tuple[int, ...] = param((64, 64), "per-point layer sizes", ge=1, min_length=1)
        radius: float | None = param(None, "sphere radius (None: learned)", gt=0)

    SdfConfig(hidden=0)   # InvalidInputError: sdf-net config: 'hidden' must be an integer >= 1, got 0

Subclasses are made frozen, keyword-only dataclasses automatically (do not add
``@dataclass``).  Supported annotations: ``int``, ``float``, ``bool``, ``str``,
``tuple[X, ...]`` (a list of ``X`` in JSON), unions of one scalar and one list
type (e.g. ``int | tuple[int, ...]``) and ``... | None``.  ``bool`` is never
accepted where an ``int`` or ``float`` is expected; an ``int`` is accepted (and
stored as a ``float``) where a ``float`` is.  The bounds of a list field apply to
each entry.

This module imports no torch: configs, defaults and schemas are available
without loading any model code.
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import math
import numbers
import operator
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

try:
    from typing import dataclass_transform
except ImportError:  # Python 3.10: only a hint for type checkers
    def dataclass_transform(**_: Any) -> Any:  # type: ignore[no-redef]
        return lambda cls: cls

from geomgen.errors import InvalidInputError

__all__ = ["ModelConfig", "PredictorConfig", "GeneratorConfig", "MeanShapeConfig", "param", "doublings",
           "describe_bounds", "within_bounds"]

C = TypeVar("C", bound="ModelConfig")

_SCALARS: dict[type, str] = {int: "int", float: "float", bool: "bool", str: "str"}
_NOUNS: dict[type, tuple[str, str]] = {int: ("an integer", "integers"), float: ("a number", "numbers"),
                                       bool: ("True or False", "booleans"), str: ("a string", "strings")}
_BOUNDS = ("ge", "gt", "le", "lt")
_CHECKS = (("ge", operator.ge), ("gt", operator.gt), ("le", operator.le), ("lt", operator.lt))
#: The name in messages while :meth:`ModelConfig.from_dict` runs with ``name=...``.
_LABEL: contextvars.ContextVar[str | None] = contextvars.ContextVar("geomgen_config_label", default=None)


def param(default: Any, doc: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None, choices: Sequence[Any] | None = None, length: int | None = None,
          min_length: int | None = None, vocabulary: str | None = None) -> Any:
    """Declare one hyper-parameter of a :class:`ModelConfig` subclass.

    Args:
        default: the default value (a list default is stored as a tuple).
        doc: one line saying what the parameter does (shown in schemas and docs).
        ge: lower bound (``>= ge``) of a number, or of every entry of a list.
        gt: strict lower bound (``> gt``).
        le: upper bound (``<= le``).
        lt: strict upper bound (``< lt``).
        choices: the allowed values.
        length: exact number of entries of a list value.
        min_length: least number of entries of a list value.
        vocabulary: for a string whose allowed values live with torch code, the
            dotted name of the constant listing them (e.g.
            ``"geomgen.nn.RESNET_PRESETS"``): shown in schemas and docs, and
            checked by the model when it is built (:meth:`ModelConfig.check_choice`),
            since a config imports no torch.

    Returns:
        A :func:`dataclasses.field` carrying the metadata.
    """
    if not isinstance(doc, str) or not doc.strip() or "\n" in doc.strip():
        raise TypeError(f"param(): doc must be one non-empty line, got {doc!r}")
    if isinstance(default, list):
        default = tuple(default)
    meta = {"doc": doc.strip(), "ge": ge, "gt": gt, "le": le, "lt": lt,
            "choices": None if choices is None else tuple(choices), "length": length, "min_length": min_length,
            "vocabulary": vocabulary}
    return dataclasses.field(default=default, metadata={"geomgen": meta})


def doublings(high: int, low: int) -> int | None:
    """``k`` with ``high == low * 2^k`` (``k >= 0``), or ``None`` when there is none
    (for cross-field rules such as "resolution is start_resolution times a power of 2")."""
    if low < 1 or high < low or high % low:
        return None
    ratio = high // low
    return ratio.bit_length() - 1 if ratio & (ratio - 1) == 0 else None


@dataclasses.dataclass(frozen=True)
class _Kind:
    """The accepted values of one field, parsed from its annotation."""

    scalar: type | None
    item: type | None
    nullable: bool

    @property
    def name(self) -> str:
        parts = [_SCALARS[self.scalar]] if self.scalar else []
        parts += [f"list[{_SCALARS[self.item]}]"] if self.item else []
        return " | ".join(parts + (["None"] if self.nullable else []))


@dataclasses.dataclass(frozen=True)
class _Param:
    name: str
    kind: _Kind
    default: Any
    doc: str
    meta: Mapping[str, Any]


def _parse_kind(owner: str, name: str, tp: Any) -> _Kind:
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    scalar = item = None
    nullable = False
    for a in args:
        origin = typing.get_origin(a)
        if a is type(None):
            nullable = True
        elif a in _SCALARS and scalar is None:
            scalar = a
        elif origin in (tuple, list) and item is None:
            inner = typing.get_args(a)
            ok = (origin is tuple and len(inner) == 2 and inner[1] is Ellipsis) or (origin is list and len(inner) == 1)
            if not ok or inner[0] not in _SCALARS:
                raise TypeError(f"{owner}.{name}: unsupported list annotation {a!r}; use tuple[int, ...] and the like")
            item = inner[0]
        else:
            raise TypeError(f"{owner}.{name}: unsupported annotation {tp!r} (int, float, bool, str, "
                            "tuple[X, ...], one scalar | one list type, | None)")
    return _Kind(scalar, item, nullable)


def _number(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def describe_bounds(bounds: Mapping[str, Any]) -> str:
    """The words for ``ge``/``gt``/``le``/``lt`` bounds (None: no bound), as config and
    :mod:`geomgen.checks` messages say them: ``" in (0, 1]"``, ``" >= 1"``, ``""`` for none."""
    lo = ("[", bounds["ge"]) if bounds["ge"] is not None else ("(", bounds["gt"]) if bounds["gt"] is not None else None
    hi = ("]", bounds["le"]) if bounds["le"] is not None else (")", bounds["lt"]) if bounds["lt"] is not None else None
    if lo and hi:
        return f" in {lo[0]}{_number(lo[1])}, {_number(hi[1])}{hi[0]}"
    if lo:
        return f" {'>=' if lo[0] == '[' else '>'} {_number(lo[1])}"
    if hi:
        return f" {'<=' if hi[0] == ']' else '<'} {_number(hi[1])}"
    return ""


def _allowed(p: _Param) -> str:
    """What ``p`` accepts, in words: ``an integer >= 1``, ``one of 'a', 'b'``, ``None or a list of ...``."""
    m, k = p.meta, p.kind
    parts = []
    if k.scalar is not None:
        if m["choices"] is not None:
            parts.append("one of " + ", ".join(repr(c) for c in m["choices"]))
        elif m["vocabulary"] is not None:
            parts.append(f"a name in {m['vocabulary']}")
        else:
            parts.append(_NOUNS[k.scalar][0] + (describe_bounds(m) if k.scalar in (int, float) else ""))
    if k.item is not None:
        if m["length"] is not None:
            count = f"a list of {m['length']} "
        elif m["min_length"]:
            count = "a non-empty list of " if m["min_length"] == 1 else f"a list of at least {m['min_length']} "
        else:
            count = "a list of "
        what = _NOUNS[k.item][1] + (describe_bounds(m) if k.item in (int, float) else "")
        if m["choices"] is not None and k.scalar is None:
            what = "values among " + ", ".join(repr(c) for c in m["choices"])
        parts.append(count + what)
    text = " or ".join(parts)
    return f"None or {text}" if k.nullable else text


def _scalar(tp: type, m: Mapping[str, Any], value: Any) -> Any:
    """``value`` as a ``tp`` within the bounds of ``m``, or ``None`` when it is not one."""
    if tp in (bool, str):
        return value if isinstance(value, tp) else None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if tp is int else numbers.Real):
        return None
    v = tp(value)
    if not math.isfinite(v) or not within_bounds(v, m):
        return None
    return v


def within_bounds(value: float, bounds: Mapping[str, Any]) -> bool:
    """Whether ``value`` keeps every ``ge``/``gt``/``le``/``lt`` bound of ``bounds`` that is not None."""
    return all(bounds.get(b) is None or op(value, bounds[b]) for b, op in _CHECKS)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(param,))
@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base class of the hyper-parameters of a model (see the module docstring).

    A subclass sets :attr:`model_name` (used in messages), declares its fields with
    :func:`param` and may override :meth:`check` for rules between fields.  An
    instance is immutable and always valid: construction converts the values
    (``int`` -> ``float`` for float fields, lists -> tuples) and raises
    :class:`~geomgen.errors.InvalidInputError` naming the model, the key, what is
    allowed and what was given, e.g. ``voxel config: 'code_dim' must be an
    integer >= 1, got 0``.

    Fields are listed (by :meth:`to_dict`, :meth:`schema`, :meth:`defaults`) in
    declaration order, the subclass's own fields before those it inherits.
    """

    #: Registry name of the model, used in messages (``"voxel config: ..."``).
    model_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        for p in self._params():
            object.__setattr__(self, p.name, self._convert(p, getattr(self, p.name)))
        self.check()

    def check(self) -> None:
        """Rules between fields (override; call ``super().check()``).  Raise
        ``self.fail(key, problem)`` for a violation.  Each field is already valid
        on its own when this runs."""

    def doubling_levels(self, high: str, low: str) -> int:
        """``k >= 1`` with field ``high == low * 2^k`` (e.g. a decoder that doubles a
        ``start_resolution`` grid up to ``resolution``), for :meth:`check` and the
        properties derived from it.

        Raises:
            InvalidInputError: ``<model> config: '<high>' must be <low> (S) times a
                power of 2 (>= 2), got R``.
        """
        hi, lo = getattr(self, high), getattr(self, low)
        k = doublings(hi, lo)
        if k is None or k < 1:
            raise self.fail(high, f"must be {low} ({lo}) times a power of 2 (>= 2), got {hi}")
        return k

    def check_choice(self, key: str, choices: Iterable[Any]) -> None:
        """Require field ``key`` to be one of ``choices``, for vocabularies that live
        with torch code (e.g. :data:`geomgen.nn.RESNET_PRESETS` for ``encoder``): the
        model calls this when it is built; the message reads like the config's own.

        Raises:
            InvalidInputError: ``<model> config: '<key>' must be one of ..., got ...``.
        """
        allowed = tuple(choices)
        value = getattr(self, key)
        if not any(type(c) is type(value) and c == value for c in allowed):
            raise self.fail(key, f"must be one of {', '.join(repr(c) for c in allowed)}, got {value!r}")

    @classmethod
    def fail(cls, key: str, problem: str) -> InvalidInputError:
        """Build (not raise) the error about ``key``: ``<model> config: '<key>' <problem>``."""
        return InvalidInputError(f"{cls._label()}: '{key}' {problem}")

    @classmethod
    def _label(cls) -> str:
        return _LABEL.get() or (f"{cls.model_name} config" if cls.model_name else cls.__name__)

    @classmethod
    def _convert(cls, p: _Param, value: Any) -> Any:
        """``value`` checked against ``p`` and converted (lists -> tuples, ints -> floats)."""
        k, m = p.kind, p.meta

        def bad() -> InvalidInputError:
            return cls.fail(p.name, f"must be {_allowed(p)}, got {_jsonable(value)!r}")

        if value is None:
            if k.nullable:
                return None
            raise bad()
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            if k.item is None:
                raise bad()
            items = tuple(_scalar(k.item, m, v) for v in value)
            if None in items or (m["length"] is not None and len(items) != m["length"]) or (
                    len(items) < (m["min_length"] or 0)):
                raise bad()
            return items
        out = None if k.scalar is None else _scalar(k.scalar, m, value)
        if out is None or (m["choices"] is not None and not any(type(c) is type(out) and c == out
                                                                for c in m["choices"])):
            raise bad()
        return out

    # ------------------------------------------------------------------ fields
    @classmethod
    def _params(cls) -> tuple[_Param, ...]:
        cached = cls.__dict__.get("_geomgen_params")
        if cached is not None:
            return cached
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        order: list[str] = []
        for klass in cls.__mro__:  # own fields first, then each base's
            for name in klass.__dict__.get("__annotations__", {}):
                if name in fields and name not in order:
                    order.append(name)
        out = []
        for name in order:
            f = fields[name]
            meta = f.metadata.get("geomgen")
            if meta is None or f.default is dataclasses.MISSING:
                raise TypeError(f"{cls.__name__}.{name}: declare every field with "
                                "geomgen.config.param(default, doc, ...) "
                                "(and do not decorate ModelConfig subclasses with @dataclass)")
            out.append(_Param(name, _parse_kind(cls.__name__, name, hints[name]), f.default, meta["doc"], meta))
        params = tuple(out)
        setattr(cls, "_geomgen_params", params)
        return params

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_dict(cls: type[C], mapping: Mapping[str, Any], *, name: str | None = None) -> C:
        """A validated config from ``mapping`` (missing keys take their defaults).

        Args:
            mapping: key -> value, e.g. a model's saved ``config`` or keyword arguments.
            name: the name to use in messages instead of :attr:`model_name`
                (e.g. ``"plugin:voxel"``).

        Raises:
            InvalidInputError: an unknown key (with a did-you-mean hint and the
                accepted keys) or a bad value.
        """
        token = _LABEL.set(f"{name} config") if name else None
        try:
            if not isinstance(mapping, Mapping):
                raise InvalidInputError(f"{cls._label()}: expected a mapping of keys to values, "
                                        f"got {type(mapping).__name__}")
            keys = [p.name for p in cls._params()]
            unknown = [k for k in mapping if k not in keys]
            if unknown:
                hints = []
                for k in unknown:
                    close = difflib.get_close_matches(str(k), keys, n=1)
                    hints.append(repr(k) + (f" (did you mean {close[0]!r}?)" if close else ""))
                raise InvalidInputError(f"{cls._label()}: unknown key{'s' if len(unknown) > 1 else ''} "
                                        f"{', '.join(hints)}; accepted keys: {', '.join(keys)}")
            return cls(**mapping)
        finally:
            if token is not None:
                _LABEL.reset(token)

    @classmethod
    def resolve(cls: type[C], config: ModelConfig | Mapping[str, Any] | None = None, /, **overrides: Any) -> C:
        """The config a model constructor was given: ``config`` (an instance, a
        mapping or ``None`` for the defaults) updated by keyword ``overrides``.

        Raises:
            InvalidInputError: ``config`` of another type, an unknown key or a bad value.
        """
        if config is None:
            base: dict[str, Any] = {}
        elif isinstance(config, cls):
            if not overrides:
                return config
            base = config.to_dict()
        elif isinstance(config, Mapping):
            base = dict(config)
        else:
            raise InvalidInputError(f"{cls._label()}: expected a {cls.__name__}, a mapping or None, "
                                    f"got {type(config).__name__}")
        return cls.from_dict({**base, **overrides})

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with some fields changed."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """The plain, JSON-able dict (lists, not tuples) a model stores as ``model.config``."""
        return {p.name: _jsonable(getattr(self, p.name)) for p in self._params()}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """:meth:`to_dict` of the default config."""
        return cls().to_dict()

    @classmethod
    def schema(cls) -> list[dict[str, Any]]:
        """One JSON-able dict per field, in order: ``name``, ``type`` (e.g.
        ``"int"``, ``"list[int] | None"``), ``default``, ``doc``, ``allowed`` (in
        words) and, where set, ``ge``/``gt``/``le``/``lt``/``choices``/``length``/``min_length``/``vocabulary``."""
        out = []
        for p in cls._params():
            entry: dict[str, Any] = {"name": p.name, "type": p.kind.name, "default": _jsonable(p.default),
                                     "doc": p.doc, "allowed": _allowed(p)}
            for key in (*_BOUNDS, "choices", "length", "min_length", "vocabulary"):
                if p.meta[key] is not None:
                    entry[key] = _jsonable(p.meta[key])
            out.append(entry)
        return out


class PredictorConfig(ModelConfig):
    """The fields every single-view predictor has (``image_size`` and ``fov``, the
    keys :class:`geomgen.models.ShapePredictor` reads); representation configs derive
    from it."""

    image_size: int = param(64, "side of the square input images (pixels)", ge=8)
    fov: float = param(40.0, "vertical field of view assumed without K (degrees)", gt=0.0, lt=180.0)


class GeneratorConfig(ModelConfig):
    """The fields every generator has (``num_classes`` and ``categories``, the keys
    :class:`geomgen.generative.ShapeGenerator` reads); generator configs derive from it."""

    num_classes: int = param(0, "number of classes of a class-conditional model (0: unconditional)", ge=0)
    categories: tuple[str, ...] = param((), "class names, one per class, so condition='chair' works")

    def check(self) -> None:
        super().check()
        if self.categories and len(self.categories) != self.num_classes:
            raise self.fail("categories", f"has {len(self.categories)} names but num_classes={self.num_classes}")


class MeanShapeConfig(PredictorConfig):
    """Hyper-parameters of the core ``mean-shape`` baseline
    (:class:`geomgen.models.MeanShape`, ``geomgen.get_model("mean-shape")``)."""

    model_name = "mean-shape"

    resolution: int = param(32, "R, voxels per axis of the mean occupancy grid (fit() sets it from the data)", ge=2)
