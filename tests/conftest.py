"""Fixtures shared by the whole suite.

``spark``: one local SparkSession for the test session. Starting Spark costs 5-10 s
and its first query several more, so every Spark test shares it; it is built by the
job's own :func:`jobs.session.build_session` (UI off, two cores, temp files under
pytest's base temp), so tests run on the settings the job runs on. Mark tests that
use it ``@pytest.mark.spark``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    from jobs.session import build_session

    session = build_session(
        "cryptopipe-tests",
        master="local[2]",
        scratch_root=tmp_path_factory.mktemp("spark-scratch"),
        ui=False,
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
