"""Names and presets the spec's sections share."""

from __future__ import annotations

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
CRON_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
