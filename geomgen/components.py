"""Typed records that plugins hand to the registry.

A plugin never builds registry entries itself: inside a ``geomgen_register_*``
hook it calls ``register(SomeSpec(...))``.  New optional fields may be added to
these records in later versions (with defaults), so a plugin written today keeps
working tomorrow.

Names are short identifiers: letters, digits, ``_``, ``-``, ``.`` and ``@``.
A colon is reserved for the qualified form ``plugin:name`` that picks one
component when two plugins register the same name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from geomgen.config import ModelConfig

__all__ = [
    "RepresentationSpec",
    "GeneratorSpec",
    "MetricSpec",
    "DatasetSpec",
    "CommandSpec",
    "ComponentSpec",
    "KINDS",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise TypeError(
            f"{kind} name {name!r} is invalid: use letters, digits, '_', '-', '.', '@' "
            "(no spaces, no ':'), starting with a letter or digit"
        )


def _check_callable(kind: str, name: str, attr: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{kind} {name!r}: {attr} must be callable, got {type(value).__name__}")


#: ``"package.module:attribute"``, for a builder named lazily
_TARGET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*$")


def _check_build(kind: str, name: str, build: object) -> None:
    if isinstance(build, str):
        if not _TARGET_RE.match(build):
            raise TypeError(f"{kind} {name!r}: build must be callable or 'package.module:attribute', got {build!r}")
        return
    _check_callable(kind, name, "build", build)


def _load_build(spec: _ModelSpec) -> Callable[..., Any]:
    """``spec.build``, imported first when it names ``"package.module:attribute"``."""
    if not isinstance(spec.build, str):
        return spec.build
    import importlib

    module, _, attr = spec.build.partition(":")
    target: Any = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{spec.kind} {spec.name!r}: {spec.build} is not callable")
    return target


def _apply_config(spec: _ModelSpec) -> None:
    """Check ``spec.config`` and derive ``spec.default_config`` from it (``default_config``
    given as well: validated by the config class and completed with its defaults)."""
    config = spec.config
    if config is None:
        return
    if not (isinstance(config, type) and issubclass(config, ModelConfig)):
        raise TypeError(f"{spec.kind} {spec.name!r}: config must be a geomgen.config.ModelConfig subclass, "
                        f"got {config!r}")
    derived = config.from_dict(spec.default_config, name=spec.name).to_dict()
    object.__setattr__(spec, "default_config", derived)


class _ModelSpec:
    """What :class:`RepresentationSpec` and :class:`GeneratorSpec` do alike (each declares
    its own fields): check the name and builder, apply ``config``, load a named builder."""

    kind: ClassVar[str]
    name: str
    build: Callable[..., Any] | str

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        _check_build(self.kind, self.name, self.build)
        _apply_config(self)

    def load_build(self) -> Callable[..., Any]:
        """The builder: ``build`` itself, or the callable its ``"package.module:attribute"`` names."""
        return _load_build(self)


@dataclass(frozen=True)
class RepresentationSpec(_ModelSpec):
    """A single-view shape predictor: image in, 3D shape out.

    Attributes:
        name: registry name, e.g. ``"voxel"``; ``geomgen.get_model(name)`` builds it.
        build: ``build(**config) -> torch.nn.Module``; receives ``default_config``
            updated with the user's keyword arguments.  Or a string
            ``"package.module:Class"`` naming it, imported only when a model is
            built (so registering costs no torch import).
        output: the geometry the model predicts: ``"mesh"``, ``"voxels"``,
            ``"pointcloud"``, ``"depth"`` or ``"implicit"``.
        description: one line shown by ``geomgen plugins`` and ``list_models``.
        default_config: keyword arguments ``build`` is called with by default;
            derived from ``config`` when that is given (then only overrides of
            its defaults, validated by it).
        tags: free-form labels (e.g. ``("pretrained",)``).
        config: the model's :class:`~geomgen.config.ModelConfig` subclass
            (its hyper-parameters with defaults, bounds and docs), or ``None``.
            With it, :func:`geomgen.get_model` validates keyword arguments through
            it and ``geomgen plugins --json`` shows its schema.

    .. versionadded:: 0.1
    """

    name: str
    build: Callable[..., Any] | str
    output: Literal["mesh", "voxels", "pointcloud", "depth", "implicit"] = "mesh"
    description: str = ""
    default_config: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    config: type[ModelConfig] | None = None

    kind: ClassVar[str] = "representation"


@dataclass(frozen=True)
class GeneratorSpec(_ModelSpec):
    """A generative model of 3D shapes (samples from noise, optionally conditioned).

    Attributes:
        name: registry name, e.g. ``"vae"``; ``geomgen.get_model(name)`` builds it.
        build: ``build(**config) -> torch.nn.Module``, or ``"package.module:Class"``
            naming it (imported when a model is built, as for :class:`RepresentationSpec`).
        output: the geometry it samples: ``"voxels"``, ``"pointcloud"`` or ``"mesh"``.
        description: one line for listings.
        default_config: keyword arguments ``build`` is called with by default
            (derived from ``config`` when that is given, as for
            :class:`RepresentationSpec`).
        tags: free-form labels.
        config: the model's :class:`~geomgen.config.ModelConfig` subclass, or
            ``None`` (see :class:`RepresentationSpec`).

    .. versionadded:: 0.1
    """

    name: str
    build: Callable[..., Any] | str
    output: Literal["mesh", "voxels", "pointcloud"] = "voxels"
    description: str = ""
    default_config: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    config: type[ModelConfig] | None = None

    kind: ClassVar[str] = "generator"


@dataclass(frozen=True)
class MetricSpec:
    """A quality measure between a prediction and a ground truth.

    Attributes:
        name: registry name, e.g. ``"chamfer-l2"``.
        fn: ``fn(pred, gt, **options)`` returning a ``(N,)`` tensor or a mapping
            of named ``(N,)`` tensors (one value per batch element).
        inputs: what ``fn`` takes: ``"pointclouds"`` (``(N, P, 3)`` tensors or
            :class:`~geomgen.structures.PointClouds`), ``"meshes"``
            (:class:`~geomgen.structures.Meshes`) or ``"voxels"``.
        higher_is_better: direction of the metric, for tables and early stopping.
        description: one line for listings (say the units and conventions).

    .. versionadded:: 0.1
    """

    name: str
    fn: Callable[..., Any]
    inputs: Literal["pointclouds", "meshes", "voxels"] = "pointclouds"
    higher_is_better: bool = False
    description: str = ""

    kind = "metric"

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        _check_callable(self.kind, self.name, "fn", self.fn)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of shapes (and usually renders of them).

    Attributes:
        name: registry name, e.g. ``"shapes"``.
        build: ``build(root=None, split="train", **config) -> torch.utils.data.Dataset``.
        description: one line for listings.
        default_config: keyword arguments ``build`` is called with by default.

    .. versionadded:: 0.1
    """

    name: str
    build: Callable[..., Any]
    description: str = ""
    default_config: Mapping[str, Any] = field(default_factory=dict)

    kind = "dataset"

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        _check_callable(self.kind, self.name, "build", self.build)


#: a dotted module name, for CommandSpec.module
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class CommandSpec:
    """A ``geomgen <name>`` sub-command.

    Give either both ``configure`` and ``run``, or ``module``: the dotted name
    of a module that defines ``configure(parser)`` and ``run(args)``.  With
    ``module`` the command costs nothing until it is invoked: ``geomgen
    --help`` lists its ``name`` and ``help`` without importing the module, and
    only ``geomgen <name> ...`` imports it (so heavy imports such as torch at
    the top of that module do not slow down every other command).

    Attributes:
        name: the sub-command, e.g. ``"sdf"`` for ``geomgen sdf ...``.
        help: one line shown by ``geomgen --help``.
        configure: ``configure(parser)`` adds arguments to an
            :class:`argparse.ArgumentParser`; None when ``module`` is given.
        run: ``run(args) -> int | None`` does the work; the return value is the
            exit code (``None`` means 0).  Raise a
            :class:`~geomgen.errors.GeomgenError` for a clean error message.
            None when ``module`` is given.
        module: dotted module name (e.g. ``"my_plugin.cli"``) that defines
            ``configure`` and ``run`` as above, imported only when the
            command runs; None when ``configure`` and ``run`` are given.

    .. versionadded:: 0.1
    """

    name: str
    help: str
    configure: Callable[[Any], None] | None = None
    run: Callable[[Any], int | None] | None = None
    module: str | None = None

    kind = "command"

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        if self.module is None:
            if self.configure is None and self.run is None:
                raise TypeError(f"command {self.name!r}: give configure and run, or module")
            _check_callable(self.kind, self.name, "configure", self.configure)
            _check_callable(self.kind, self.name, "run", self.run)
            return
        if not isinstance(self.module, str) or not _MODULE_RE.match(self.module):
            raise TypeError(f"command {self.name!r}: module must be a dotted module name such as "
                            f"'my_plugin.cli', got {self.module!r}")
        if self.configure is not None or self.run is not None:
            raise TypeError(f"command {self.name!r}: give either module or configure and run, not both")

    def load(self) -> tuple[Callable[[Any], None], Callable[[Any], int | None]]:
        """``(configure, run)``: the callables given, or those of ``module``, imported now.

        Raises:
            ImportError: ``module`` cannot be imported.
            TypeError: ``module`` lacks a callable ``configure`` or ``run``.
        """
        if self.module is None:
            return self.configure, self.run  # type: ignore[return-value]
        import importlib

        mod = importlib.import_module(self.module)
        funcs = []
        for attr in ("configure", "run"):
            value = getattr(mod, attr, None)
            if not callable(value):
                raise TypeError(f"command {self.name!r}: module {self.module!r} has no callable {attr!r}")
            funcs.append(value)
        return funcs[0], funcs[1]


ComponentSpec = RepresentationSpec | GeneratorSpec | MetricSpec | DatasetSpec | CommandSpec

#: kind name -> record type, in display order.
KINDS: dict[str, type] = {
    "representation": RepresentationSpec,
    "generator": GeneratorSpec,
    "metric": MetricSpec,
    "dataset": DatasetSpec,
    "command": CommandSpec,
}
