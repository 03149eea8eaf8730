"""``geomgen models [NAME...] [--json]``: installed models and their config schemas.

Without a name: one line per model (name, kind, output, description).  With
names: each model's hyper-parameters as its :class:`~geomgen.config.ModelConfig`
declares them (key, type, default, what is allowed, doc), the same table that
``docs/models.md`` shows for the shipped models.  Imports no torch.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["configure", "run", "model_record"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen models``."""
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="models whose config schema to show (default: list every model)")
    parser.add_argument("--kind", choices=["representation", "generator"], default=None,
                        help="list only this kind of model")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def model_record(name: str) -> dict[str, Any]:
    """``{"name", "kind", "output", "description", "config", "schema"}`` of installed model
    ``name``: ``config`` the config class's qualified name (None for a model registered with a
    plain ``default_config``), ``schema`` its :meth:`~geomgen.config.ModelConfig.schema` (for a
    plain ``default_config``: its keys and defaults only).

    Raises:
        UnknownComponentError: no installed plugin provides ``name`` (with suggestions).
    """
    import geomgen

    spec = geomgen.get_model_spec(name)
    cls = geomgen.get_model_config(name)
    if cls is not None:
        schema = cls.schema()
        config = f"{cls.__module__}.{cls.__qualname__}"
    else:
        schema = [{"name": k, "default": v} for k, v in dict(spec.default_config).items()]
        config = None
    return {"name": spec.name, "kind": spec.kind, "output": spec.output, "description": spec.description,
            "config": config, "schema": schema}


def _print_schema(record: dict[str, Any]) -> None:
    print(f"{record['name']}  ({record['kind']}, output {record['output']})")
    if record["description"]:
        print(f"  {record['description']}")
    print(f"  config: {record['config'] or 'default_config (no declared schema)'}")
    rows = [("KEY", "TYPE", "DEFAULT", "ALLOWED", "DOC")]
    rows += [(p["name"], str(p.get("type", "-")), json.dumps(p.get("default")), str(p.get("allowed", "-")),
              str(p.get("doc", ""))) for p in record["schema"]]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        print("  " + "  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4])


def run(args: argparse.Namespace) -> int:
    """List the models, or show the named models' config schemas; returns 0."""
    import geomgen

    names = args.names or geomgen.list_models(kind=args.kind)
    records = [model_record(n) for n in names]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    if args.names:
        for n, record in enumerate(records):
            if n:
                print()
            _print_schema(record)
        return 0
    rows = [("NAME", "KIND", "OUTPUT", "DESCRIPTION")]
    rows += [(r["name"], r["kind"], r["output"], r["description"]) for r in records]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in range(3)) + "  " + r[3])
    print("\n'geomgen models NAME' shows a model's config keys; set them with 'geomgen train NAME --set KEY=VALUE' "
          "or geomgen.get_model(NAME, KEY=VALUE)")
    return 0
