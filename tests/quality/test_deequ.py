"""PyDeequ and the native engine agree, where the Deequ jar is on the classpath.

No Deequ jar can be fetched on this machine (no Maven access), so these tests skip here and run
where the jar is present (EMR, or `spark.jars` pointing at a local copy).
"""

from __future__ import annotations

import pytest

from spark_app.config import CheckConfig
from spark_app.quality.gate import deequ_available, verify

CHECKS = [
    CheckConfig("hasSize", min=1),
    CheckConfig("isComplete", column="k"),
    CheckConfig("isUnique", column="k"),
    CheckConfig("isUnique", columns=("k", "s")),
    CheckConfig("isNonNegative", column="v"),
    CheckConfig("hasMin", column="v", min=0),
    CheckConfig("isContainedIn", column="s", values=("a",)),
    CheckConfig("satisfies", predicate="v > 0", name="v positive", level="Warning"),
]


@pytest.fixture()
def deequ(spark):
    if not deequ_available(spark):
        pytest.skip("Deequ jar not on the classpath: com.amazon.deequ.VerificationSuite does not load")
    return spark


def test_deequ_and_native_give_the_same_statuses_and_values(deequ):
    df = deequ.createDataFrame(
        [(1, "a", 5), (1, "a", None), (2, None, 3), (3, "b", -1), (None, None, 2)], "k int, s string, v int"
    )
    ours = verify(deequ, df, "t", CHECKS, engine="native")
    theirs = verify(deequ, df, "t", CHECKS, engine="deequ")
    assert theirs.engine == "deequ"
    assert [(r.check, r.status) for r in theirs.results] == [(r.check, r.status) for r in ours.results]
    assert [r.value for r in theirs.results] == pytest.approx([r.value for r in ours.results])
    callback = deequ.sparkContext._gateway.get_callback_server()
    assert callback is None or callback.is_shutdown  # the driver can exit
