"""Shared fixtures: a tiny synthesized mini corpus, built once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _need_flite():
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (make setup installs it)")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """6 sentences x every available voice: data/{train,dev,test} with phones.ctm."""
    _need_flite()
    from vqspeech.corpora.mini import build_mini_corpus

    out = tmp_path_factory.mktemp("mini")
    build_mini_corpus(out, num_sentences=6, progress=False)
    return out
