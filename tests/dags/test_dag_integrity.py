"""Every file in dags/ imports through Airflow's DagBag, and every DAG can be found and owned.

What a DAG file may import at its top level is checked on the source, without Airflow, in
tests/unit/test_layering.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p.relative_to(DAGS).as_posix() for p in DAGS.rglob("*.py"))


@pytest.fixture(scope="module")
def dagbag():
    if not DAG_FILES:
        pytest.fail(f"{DAGS} has no DAG files yet: there is nothing to check, which is not a pass", pytrace=False)
    from airflow.dag_processing.dagbag import DagBag

    # safe_mode=False: parse every .py file, not only those that mention "airflow" and "dag".
    return DagBag(dag_folder=str(DAGS), safe_mode=False)


def test_every_dag_file_imports_without_error(dagbag, capsys):
    with capsys.disabled():
        print(f"\nDAG file parse durations ({DAGS}):")
        for stat in sorted(dagbag.dagbag_stats, key=lambda s: s.file):
            print(f"  {stat.file:45} {stat.duration.total_seconds():7.3f} s  "
                  f"{stat.dag_num} DAG(s), {stat.task_num} task(s)")
    errors = "\n\n".join(f"{file}:\n{trace}" for file, trace in dagbag.import_errors.items())
    assert not dagbag.import_errors, f"DAG files that fail to import (a cycle shows here too):\n{errors}"
    unparsed = set(DAG_FILES) - {stat.file for stat in dagbag.dagbag_stats}
    assert not unparsed, f"files in dags/ the DagBag did not parse (.airflowignore?): {sorted(unparsed)}"
    assert dagbag.dags, "dags/ parses but defines no DAG"


def test_every_dag_has_tags_an_owner_and_docs_and_no_cycle(dagbag):
    from airflow.configuration import conf

    default_owner = conf.get("operators", "default_owner")
    problems = []
    for dag_id, dag in sorted(dagbag.dags.items()):
        dag.check_cycle()
        if not dag.tags:
            problems.append(f"{dag_id}: no tags")
        owners = {task.owner for task in dag.tasks}
        if not owners or owners & {"", None, default_owner}:
            problems.append(f"{dag_id}: tasks without an explicit owner (owners {sorted(map(str, owners))}; "
                            f"set default_args={{'owner': ...}})")
        if not (dag.doc_md or "").strip():
            problems.append(f"{dag_id}: no doc_md")
    assert not problems, "\n".join(problems)
