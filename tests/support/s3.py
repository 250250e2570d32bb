"""moto's S3 for tests: clients, a session's S3A settings, a server that checks credentials."""

from __future__ import annotations

import urllib.request

from spark_app.config import S3Config
from spark_app.session import s3a_conf

HADOOP_PREFIX = "spark.hadoop."


def s3_config(endpoint_url: str) -> S3Config:
    return S3Config(endpoint_url=endpoint_url, path_style_access=True)


def client(endpoint_url: str, **credentials):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url, region_name="us-east-1", **credentials)


def use_s3a(spark, s3: S3Config) -> None:
    """The settings `build_session(s3=...)` gives a new local session, put into the running one.

    The test run shares one session, started before moto's port was known; S3A reads its
    settings when a bucket's filesystem is first created, so buckets must be new to the run.
    """
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_conf(s3).items():
        hadoop.set(key[len(HADOOP_PREFIX) :], value)


def require_credentials(endpoint_url: str) -> None:
    """From now on the moto server at `endpoint_url` checks every request's signature and rights."""
    url = f"{endpoint_url}/moto-api/reset-auth"  # the body is the number of requests still let through
    req = urllib.request.Request(url, data=b"0", method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req, timeout=10).close()
