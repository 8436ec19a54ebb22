"""Locations come from environment variables; the lake root may be a path or a URI."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_lake_root_is_a_path_or_a_uri(monkeypatch):
    from pipelines import config, lake
    from pipelines.errors import MayoristaError

    monkeypatch.setenv("MAYORISTA_LAKE", "file:///srv/lake%20gt")
    assert isinstance(config.lake_root(), Path) and str(config.lake_root()) == "/srv/lake gt"
    monkeypatch.setenv("MAYORISTA_LAKE", "/srv/lake")
    assert lake.is_local(config.lake_root())
    monkeypatch.setenv("MAYORISTA_LAKE", "memory://lake")
    root = config.lake_root()
    assert not lake.is_local(root) and str(root / "ncc11_energy") == "memory://lake/ncc11_energy"
    # s3fs is a dependency (the lake on S3, pipelines/objectstore.py): an s3:// lake is a location
    monkeypatch.setenv("MAYORISTA_LAKE", "s3://bucket/lake")
    root = config.lake_root()
    assert not lake.is_local(root) and str(root / "main") == "s3://bucket/lake/main"
    # gcsfs is not: say what is missing instead of writing to a folder called "gs:"
    monkeypatch.setenv("MAYORISTA_LAKE", "gs://bucket/lake")
    with pytest.raises(MayoristaError, match=r"no filesystem for gs:// here \(Please install gcsfs"):
        config.lake_root()
