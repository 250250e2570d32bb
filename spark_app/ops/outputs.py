"""After a successful publish: the report delivered, new trouble told, then the published marker.

`publish_outputs` is called by a pipeline once its day is in PostgreSQL. It reads the day's
report from what was published (spark_app.report.build), adds the overall match rate and the
advertisers in trouble to the run's progress (the run metrics read them there), puts the report
to `report.s3_prefix` when set and publishes a summary when advertisers are newly in trouble
(not again when the day is re-run after a delivered report: its marker names the report), and
last writes the day's marker (spark_app.published) to `alerts_config.markers_uri(cfg)`, naming
the report when it was delivered. Each step that fails logs a warning saying why and the next
one goes on: the day is published whatever happens here.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any, Optional, Tuple

from spark_app.config import Config
from spark_app.progress import Progress

log = logging.getLogger(__name__)


def publish_outputs(cfg: Config, pipeline: str, day: date, run_id: str, progress: Progress) -> None:
    """Report, summary and marker of a published day; never raises."""
    from spark_app.alerts_config import markers_uri

    markers = markers_uri(cfg)
    if cfg.metrics is None and not cfg.report.s3_prefix and not markers:
        return
    report, previous = _read_reports(cfg, pipeline, day, want_previous=bool(cfg.report.s3_prefix))
    if report is not None:
        rate = report.today.match_rate
        if rate is not None:
            progress.facts["match_rate"] = round(rate, 6)
        progress.add_counts({"advertisers_in_trouble": report.troubled_count})
    told = _already_told(cfg, markers, pipeline, day)
    report_uri = None
    if report is not None and cfg.report.s3_prefix:
        report_uri = _deliver(cfg, report, previous, told)
    if markers:
        _write_marker(cfg, markers, pipeline, day, run_id, progress, report_uri)


def _read_reports(cfg: Config, pipeline: str, day: date, want_previous: bool) -> Tuple[Any, Any]:
    """The day's report and (for "newly in trouble") the day before's; None for one that cannot be read."""
    from spark_app.errors import NoPublishedRun
    from spark_app.postgres.connect import connection_spec
    from spark_app.report.build import read_report

    spec, pg, settings = connection_spec(cfg.postgres), cfg.postgres, cfg.report
    try:
        report = read_report(spec, pg.schema, pipeline, day, settings.days, settings)
    except Exception as exc:  # noqa: BLE001
        log.warning("the report of %s %s could not be read (%s): no match rate, trouble count or "
                    "delivered report for this run", pipeline, day, exc)
        return None, None
    if not want_previous:
        return report, None
    try:
        before = day - timedelta(days=1)
        return report, read_report(spec, pg.schema, pipeline, before, settings.days, settings)
    except NoPublishedRun:
        return report, None  # nobody was told of the day before: everyone in trouble is new
    except Exception as exc:  # noqa: BLE001
        log.warning("the report of %s %s could not be read (%s): every advertiser in trouble counts as new",
                    pipeline, day - timedelta(days=1), exc)
        return report, None


def _already_told(cfg: Config, markers: Optional[str], pipeline: str, day: date) -> bool:
    """A re-run of a day whose marker names a delivered report: its trouble was told then."""
    from spark_app.ops import aws
    from spark_app.published import read_marker

    try:
        marker = read_marker(aws.s3(cfg), markers, pipeline, day) if markers else None
    except Exception:  # noqa: BLE001 - unknown: tell rather than stay silent
        return False
    return bool(marker and marker.get("report_uri"))


def _deliver(cfg: Config, report: Any, previous: Any, told: bool) -> Optional[str]:
    """The report on S3 and, when advertisers are newly in trouble, the summary; the report's URI."""
    from spark_app.ops import aws, delivery

    settings = cfg.report
    try:
        s3 = aws.s3(cfg)
        delivered = delivery.deliver_day(s3, report, settings.s3_prefix)
    except Exception as exc:  # noqa: BLE001
        log.warning("the report of %s %s was not delivered to %s: %s", report.pipeline, report.day,
                    settings.s3_prefix, aws.error_text(exc))
        return None
    log.info("report of %s delivered: %s (%d products-to-add CSV file(s) beside it)", report.day,
             delivered.html_uri, len(delivered.csv_uris))
    newly = delivery.newly_in_trouble(report, previous)
    if not newly or told:
        if newly:
            log.info("%s was delivered before (its marker names the report): its trouble was told then",
                     report.day)
        return delivered.html_uri
    try:
        topic = settings.topic_arn or aws.alert_topic_arn(cfg)
        if topic is None:
            log.warning("%d advertiser(s) newly in trouble on %s, but no topic to tell (set report.topic_arn "
                        "or an alerts: section)", len(newly), report.day)
            return delivered.html_uri
        link = delivery.presigned_link(s3, delivered.html_uri, settings.link_hours)
        subject, message = delivery.trouble_summary(report, newly, delivered, link, settings.link_hours)
        message_id = delivery.publish_summary(aws.sns(cfg), topic, subject, message)
        log.info("trouble summary published to %s (message %s): %s", topic, message_id, subject)
    except Exception as exc:  # noqa: BLE001
        log.warning("the trouble summary of %s was not published: %s", report.day, aws.error_text(exc))
    return delivered.html_uri


def _write_marker(cfg: Config, markers: str, pipeline: str, day: date, run_id: str, progress: Progress,
                  report_uri: Optional[str]) -> None:
    from spark_app.ops import aws
    from spark_app.published import marker_body, write_marker

    counts = progress.counts
    stages = {s.name: s for s in progress.stages}
    body = marker_body(
        pipeline, day, run_id,
        rows_in=counts.get("lines_read", counts.get("presto_rows")),
        rows_out=stages["publish"].rows if "publish" in stages else None,
        rows_rejected=counts.get("rejected", 0) + counts.get("rejected_at_load", 0),
        match_rate=progress.facts.get("match_rate"), report_uri=report_uri,
    )
    try:
        uri = write_marker(aws.s3(cfg), markers, pipeline, day, body)
    except Exception as exc:  # noqa: BLE001
        log.warning("the published marker of %s %s was not written to %s: %s; the deadline watch will "
                    "report the day as late", pipeline, day, markers, aws.error_text(exc))
        return
    log.info("published marker written: %s", uri)
