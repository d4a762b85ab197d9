"""whylogs profiles: build, store (atomically, content-addressed) and load."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow_mlops import storage
from airflow_mlops.whylogs_compat import import_whylogs

if TYPE_CHECKING:
    import pandas as pd
    from whylogs.core import DatasetProfileView

log = logging.getLogger(__name__)


def profile_frame(df: pd.DataFrame) -> DatasetProfileView:
    why = import_whylogs()
    return why.log(pandas=df).view()


def profile_uri(storage_uri: str, pipeline: str, partition: str, content_hash: str) -> str:
    """Profiles live per pipeline and partition; the content hash in the name versions them."""
    return storage.join(storage_uri, pipeline, "profiles", partition, f"profile-{content_hash[:16]}.bin")


def save_profile(view: DatasetProfileView, uri: str) -> str:
    """Store a profile atomically; an existing profile of the same content is reused as is."""
    if storage.exists(uri):
        log.info("profile %s already stored for this content: reusing it", uri)
        return uri
    storage.write_bytes_atomic(uri, view.serialize())
    log.info("stored profile %s", uri)
    return uri


def load_profile(uri: str) -> DatasetProfileView:
    import_whylogs()
    from whylogs.core import DatasetProfileView

    return DatasetProfileView.deserialize(storage.read_bytes(uri))
