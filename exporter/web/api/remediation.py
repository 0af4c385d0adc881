"""What to do about each kind of failure: one hint per outcome, shown by /api/failures.

The table lives in exporter/incidents/causes.py, where it grew into the incident
explanations' causes; /api/failures and the incidents read the same hints."""

from __future__ import annotations

from ...incidents.causes import HINTS, hint

__all__ = ["HINTS", "hint"]
