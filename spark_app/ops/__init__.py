"""What a run tells operations: the published marker, CloudWatch run metrics, the report delivered.

Runs on the driver, after the day's run (never on executors). Nothing here fails a day: each
part logs a warning saying why it could not write, put or publish, and the day stands.

    aws        boto3 clients of the job's endpoints (moto's locally), short timeouts
    metrics    one PutMetricData per day run, from the run's own stats (process_data.py)
    delivery   the report and its CSVs to S3, the trouble summary to SNS
    outputs    after a successful publish: report, summary, then the marker (the pipeline)
"""

from __future__ import annotations
