"""The catalog health report: which catalogs are in trouble, since when, and which products to add.

Runs where `process_data.py report` is called (a laptop, a scheduler host, a cluster's primary
node: any machine that reaches PostgreSQL), never on executors, and imports no Spark, so it starts
in about a second; it ships in the cluster's `spark_app.zip` beside the entry point whose command
it serves. It reads PostgreSQL only
(`advertiser_match_rates`, `product_views`, `pipeline_runs`, `quality_metrics`) over a window of
days ending on the report's day and writes one self-contained HTML page (inline CSS and SVG, no
script, nothing fetched), a short terminal summary, and optionally one CSV of products to add
per advertiser in trouble.

- `queries`: the SQL, each query bounded by the window's days and the top-N of the config;
- `model`: the report's values and who counts as in trouble (threshold, drop below own median);
- `charts`: inline SVG line charts, with days that have no successful run drawn as gaps;
- `page`: the HTML page; `build`: reading, writing the page and the CSV files, the summary.
"""

from __future__ import annotations
