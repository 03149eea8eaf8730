"""Registers the 'mesh' representation through geomgen's public hooks."""

from __future__ import annotations

import geomgen
