"""A "Migration report" tab on every DAG run page: the run's report, rendered.

Airflow 3 plugin parts: a FastAPI app on the API server (`/kkp-report/<dag>/<run>`, the page is
kkp_migration.airflow.report_view) and an external view that shows it as a tab of each run
("destination": "dag_run"). Every Airflow process loads plugins, but only the API server serves
pages, so the app is imported on its first request (FastAPI's security module costs half a second
of import time that a task process should not pay).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


async def report_app(scope, receive, send) -> None:
    """ASGI entry point: the report view's FastAPI app, imported when first asked for a page."""
    from kkp_migration.airflow.report_view import app

    await app(scope, receive, send)


class KkpReportView(AirflowPlugin):
    name = "kkp_report_view"
    fastapi_apps = [{"app": report_app, "url_prefix": "/kkp-report", "name": "KKP migration report"}]
    external_views = [{"name": "Migration report", "href": "/kkp-report/{DAG_ID}/{RUN_ID}", "destination": "dag_run",
                       "url_route": "migration_report"}]
