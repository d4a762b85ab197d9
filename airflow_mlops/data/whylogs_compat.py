"""The one place that imports whylogs.

whylogs 1.6.4 (its last release) still refers to ``numpy.unicode_``, which NumPy 2 removed: the first
``why.log`` fails with an AttributeError. Aliasing it to ``numpy.str_`` (what it always was) before whylogs is
imported makes profiling, serialisation, merging and the sketches work. whylogs also sends usage analytics
unless told not to; a pipeline must never phone home.
"""

from __future__ import annotations

import logging
import os


def import_whylogs():
    """Return the ``whylogs`` module, made to work on NumPy 2 and with analytics off."""
    os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
    import numpy as np

    if "unicode_" not in np.__dict__:
        np.unicode_ = np.str_  # type: ignore[attr-defined]
    import whylogs

    # whylogs logs every chunk it deserialises at INFO; task logs are for people.
    logging.getLogger("whylogs").setLevel(logging.WARNING)
    return whylogs
