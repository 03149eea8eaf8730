"""Registers the 'voxel' representation through geomgen's public hooks."""

from __future__ import annotations

import geomgen
