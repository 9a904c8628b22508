"""The run's migration report as an HTML page, for the "Migration report" tab of each run page.

The report task keeps its markdown in the XCom `report` (before/after, approvals, step timings,
rollback conf). Airflow's UI shows XComs as JSON and logs as plain text, so this FastAPI app, which
plugins/kkp_report_view.py mounts on the API server, renders it. Reading it needs the same right as
reading the run's XComs; the signed-in user's session cookie carries it into the tab's frame. Raw
HTML in the markdown is escaped, never rendered.
"""

from __future__ import annotations

import html

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt
from sqlalchemy import select

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

REPORT_TASK, REPORT_KEY = "report", "report"
STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a202c; margin: 0 16px 24px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 24px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 4px 12px 4px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; }
code, pre { font-family: ui-monospace, monospace; font-size: 13px; background: #f4f6f8; border-radius: 4px; }
code { padding: 1px 4px; } pre { padding: 10px 12px; overflow-x: auto; }
"""

app = FastAPI(title="KKP migration report")


def report_markdown(dag_id: str, run_id: str) -> str | None:
    """The markdown the run's report task kept, or None before it has run."""
    with create_session() as session:
        row = session.scalar(select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id,
                                                     XComModel.task_id == REPORT_TASK, XComModel.key == REPORT_KEY))
        value = None if row is None else XComModel.deserialize_value(row)
    return value.get("markdown") if isinstance(value, dict) else None


@app.get("/{dag_id}/{run_id}", response_class=HTMLResponse,
         dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.XCOM))])
def show(dag_id: str, run_id: str) -> str:
    markdown = report_markdown(dag_id, run_id)
    body = (MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown) if markdown else
            f"<p>No migration report for run <code>{html.escape(run_id)}</code> yet: the run's last task, "
            "<code>report</code>, writes it.</p>")
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>{body}</body></html>"
