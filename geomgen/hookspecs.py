"""The hooks a geomgen plugin can implement.

A plugin is a module (or object) whose functions are named after these hooks
and, preferably, decorated with :data:`geomgen.hookimpl`.  It is found through
the ``geomgen`` entry-point group::

    # pyproject.toml of your distribution
    [project.entry-points.geomgen]
    mything = "geomgen_mything.plugin"

Every hook receives a ``register`` callable and returns ``None``; call
``register`` once per component with a record from :mod:`geomgen.components`.
An implementation may accept fewer arguments than the spec lists, so new
arguments can be added to a hook later without breaking any plugin.

Functions whose name starts with ``geomgen_`` but that match no hook here are
reported as errors (a misspelled hook would otherwise be silently ignored).
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from geomgen.components import (
    CommandSpec,
    DatasetSpec,
    GeneratorSpec,
    MetricSpec,
    RepresentationSpec,
)

PROJECT = "geomgen"

# The spec marker is private: only this module declares hooks.
_hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate hook implementations with this marker (re-exported as ``geomgen.hookimpl``).
hookimpl = pluggy.HookimplMarker(PROJECT)


@_hookspec
def geomgen_register_representations(register: Callable[[RepresentationSpec], None]) -> None:
    """Register single-view shape predictors (image -> 3D shape).

    Example::

        # my_plugin/config.py (no torch): the hyper-parameters, declared once
        class SdfNetConfig(PredictorConfig):
            hidden: int = param(256, "width of the MLP", ge=1)

        # my_plugin/plugin.py: the model class is named, imported on the first build
        @geomgen.hookimpl
        def geomgen_register_representations(register):
            register(RepresentationSpec(name="sdf-net", build="my_plugin.model:SdfNet",
                                        output="implicit", config=SdfNetConfig))

    .. versionadded:: 0.1
    """


@_hookspec
def geomgen_register_generators(register: Callable[[GeneratorSpec], None]) -> None:
    """Register generative models of shapes (noise -> 3D shape).

    Example::

        @geomgen.hookimpl
        def geomgen_register_generators(register):
            register(GeneratorSpec(name="voxel-vae", build="my_plugin.vae:VoxelVAE",
                                   output="voxels", config=VoxelVAEConfig))

    .. versionadded:: 0.1
    """


@_hookspec
def geomgen_register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register quality metrics usable by ``geomgen compare`` and evaluation.

    Example::

        @geomgen.hookimpl
        def geomgen_register_metrics(register):
            register(MetricSpec(name="hausdorff", fn=hausdorff, inputs="pointclouds",
                                description="symmetric Hausdorff distance (unsquared)"))

    .. versionadded:: 0.1
    """


@_hookspec
def geomgen_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets, built with ``geomgen.get_dataset(name, **config)``.

    Example::

        @geomgen.hookimpl
        def geomgen_register_datasets(register):
            register(DatasetSpec(name="my-scans", build=MyScans))

    .. versionadded:: 0.1
    """


@_hookspec
def geomgen_register_commands(register: Callable[[CommandSpec], None]) -> None:
    """Register ``geomgen`` CLI sub-commands.

    Example::

        def _configure(parser):
            parser.add_argument("mesh")

        def _run(args):
            print(args.mesh)
            return 0

        @geomgen.hookimpl
        def geomgen_register_commands(register):
            register(CommandSpec(name="hello", help="print a path", configure=_configure, run=_run))

    .. versionadded:: 0.1
    """


#: hook name -> component kind it registers.
REGISTER_HOOKS: dict[str, str] = {
    "geomgen_register_representations": "representation",
    "geomgen_register_generators": "generator",
    "geomgen_register_metrics": "metric",
    "geomgen_register_datasets": "dataset",
    "geomgen_register_commands": "command",
}
