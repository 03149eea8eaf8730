"""mkdocs hook: render the Sphinx cross-reference roles of geomgen's docstrings as code.

The docstrings are Google style but refer to other objects with Sphinx roles
(:func:`geomgen.ops.knn_points`, :class:`~geomgen.structures.Meshes`); Markdown leaves the
role name in front of the code span. This drops it (``~`` keeps only the last component, as
Sphinx does). Purely cosmetic, local, no network.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const):<code>(~?)([^<]*)</code>")


def _code(match: re.Match) -> str:
    target = match.group(2)
    if match.group(1):
        target = target.rsplit(".", 1)[-1]
    return f"<code>{target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_code, html)
