"""The report delivered: its HTML and products-to-add CSVs on S3, and a short summary on SNS.

    <report.s3_prefix>/<pipeline>/dt=<day>/report.html
    <report.s3_prefix>/<pipeline>/dt=<day>/products-to-add-<advertiser>-<day>.csv

The files are the ones `process_data.py report --out ... --csv ...` writes (spark_app.report.build),
made in a temporary folder and put to S3. The summary names the advertisers newly in trouble (in
trouble on the day and not on the day before, among the report's top `report.top_advertisers`),
the views they lose, the report's S3 URI and a presigned link valid `report.link_hours`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Set, Tuple

from spark_app.report.model import Report
from spark_app.s3_uri import split_s3_uri

HTML_NAME = "report.html"
SUBJECT_LIMIT = 100  # SNS's limit for an email subject


@dataclass
class Delivered:
    html_uri: str
    csv_uris: List[str] = field(default_factory=list)


def day_prefix(s3_prefix: str, pipeline: str, day: Any) -> str:
    """s3://bucket/prefix -> s3://bucket/prefix/<pipeline>/dt=<day>"""
    return f"{s3_prefix.rstrip('/')}/{pipeline}/dt={day}"


def put_report(s3: Any, report: Report, html_uri: str, csv_prefix: Optional[str]) -> Delivered:
    """Write the report's HTML (and, with `csv_prefix`, one CSV per advertiser in trouble) to S3."""
    from spark_app.report.build import write_csvs, write_html

    with tempfile.TemporaryDirectory(prefix="report-") as tmp:
        html = write_html(report, Path(tmp) / HTML_NAME)
        _put(s3, html, html_uri, "text/html; charset=utf-8")
        delivered = Delivered(html_uri)
        if csv_prefix:
            for path in write_csvs(report, Path(tmp) / "csv"):
                uri = f"{csv_prefix.rstrip('/')}/{path.name}"
                _put(s3, path, uri, "text/csv; charset=utf-8")
                delivered.csv_uris.append(uri)
    return delivered


def deliver_day(s3: Any, report: Report, s3_prefix: str) -> Delivered:
    """The day's report and CSVs under `<s3_prefix>/<pipeline>/dt=<day>/`."""
    base = day_prefix(s3_prefix, report.pipeline, report.day)
    return put_report(s3, report, f"{base}/{HTML_NAME}", base)


def _put(s3: Any, path: Path, uri: str, content_type: str) -> None:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type)


def presigned_link(s3: Any, uri: str, hours: int) -> str:
    bucket, key = split_s3_uri(uri)
    return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                     ExpiresIn=hours * 3600)


def newly_in_trouble(report: Report, previous: Optional[Report]) -> List[Any]:
    """Advertisers in trouble on the day and not on the day before (all of them without a report
    of the day before: nobody was told yet)."""
    before: Set[int] = {a.advertiser_id for a in previous.troubled} if previous else set()
    return [a for a in report.troubled if a.advertiser_id not in before]


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def trouble_summary(report: Report, newly: List[Any], delivered: Delivered, link: str,
                    hours: int) -> Tuple[str, str]:
    """(subject, message) of the summary published when advertisers are newly in trouble."""
    n = len(newly)
    subject = f"[{report.pipeline}] {n} advertiser{'s' if n != 1 else ''} newly in trouble on {report.day}"
    lost = sum(a.unmatched_views for a in newly)
    lines = [
        f"{report.pipeline} {report.day}: {n} advertiser(s) newly in trouble, losing {lost:,} views "
        f"({report.troubled_count:,} in trouble in all, losing {report.troubled_unmatched_views:,}).",
        "",
        f"Match rate of the day: {_pct(report.today.match_rate)} "
        f"(trailing median {_pct(report.trailing_median)})",
        "",
        "Newly in trouble (views lost = views of products not in the catalog):",
    ]
    for a in newly:
        median = f", median {_pct(a.median)}" if a.median is not None else ""
        lines.append(f"  advertiser {a.advertiser_id}: match rate {_pct(a.match_rate)}{median}, "
                     f"{a.unmatched_views:,} views lost ({', '.join(a.reasons)})")
    lines += [
        "",
        f"Report:  {delivered.html_uri}",
        f"Link:    {link}",
        f"         (valid {hours} h)",
    ]
    if delivered.csv_uris:
        lines.append(f"Products to add: {len(delivered.csv_uris)} CSV file(s) beside the report")
    return subject[:SUBJECT_LIMIT], "\n".join(lines) + "\n"


def publish_summary(sns: Any, topic_arn: str, subject: str, message: str) -> str:
    """Publish to the topic; returns SNS's message id."""
    return sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)["MessageId"]


def report_to_s3(cfg: Any, report: Report, html_uri: str, csv_to: Optional[str]) -> str:
    """`process_data.py report --out s3://... [--csv DIR or s3://...]`: the files put, and the summary.

    SinkError (exit 5) naming the location when S3 refuses."""
    from spark_app.errors import SinkError
    from spark_app.ops import aws
    from spark_app.report.build import summary, write_csvs

    csv_local = csv_to if csv_to and not csv_to.startswith("s3://") else None
    try:
        delivered = put_report(aws.s3(cfg), report, html_uri, None if csv_local else csv_to)
    except Exception as exc:  # noqa: BLE001 - botocore's errors, without credentials in them
        raise SinkError(f"cannot write the report to {html_uri}: {aws.error_text(exc)}") from None
    text = summary(report, None, write_csvs(report, Path(csv_local)) if csv_local else None)
    lines = [text, f"  report: {delivered.html_uri}"]
    if delivered.csv_uris:
        lines.append(f"  products to add: {len(delivered.csv_uris)} CSV file(s) under {csv_to}")
    return "\n".join(lines)
