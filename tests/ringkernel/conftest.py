"""Every test here starts with empty compile caches: a private RINGKERNEL_CACHE_DIR, no memory cache."""

from __future__ import annotations

import pytest

import ringkernel.compiler


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    directory = tmp_path_factory.mktemp("ringkernel-cache")
    monkeypatch.setenv("RINGKERNEL_CACHE_DIR", str(directory))
    monkeypatch.delenv("RINGKERNEL_NO_CACHE", raising=False)
    monkeypatch.setattr(ringkernel.compiler, "_memory_cache", {})
    return directory
