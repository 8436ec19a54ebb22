"""Locations come from environment variables."""

from __future__ import annotations

import pytest


def test_lake_root_is_a_path_or_file_uri(monkeypatch):
    from pipelines import config
    from pipelines.errors import MayoristaError

    monkeypatch.setenv("MAYORISTA_LAKE", "file:///srv/lake%20gt")
    assert str(config.lake_root()) == "/srv/lake gt"
    monkeypatch.setenv("MAYORISTA_LAKE", "s3://bucket/lake")
    with pytest.raises(MayoristaError, match="only local paths and file:// URIs"):
        config.lake_root()
