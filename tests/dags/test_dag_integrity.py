"""Every file in dags/ imports through Airflow's DagBag, and every DAG can be found and owned.

What a DAG file may import at its top level is checked on the source, without Airflow, in
tests/unit/test_layering.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
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


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_parsing_a_dag_file_loads_no_cluster_client(dag_file):
    """The source check (tests/unit/test_layering.py) sees a DAG file's own imports; this sees what
    it pulls in through the library too, in a fresh interpreter as a DAG processor parses it."""
    heavy = ["kubernetes", "kubernetes_asyncio", "requests", "lab"]
    code = ("import json, sys\n"
            "from airflow.dag_processing.dagbag import DagBag\n"
            f"bag = DagBag(dag_folder={str(DAGS / dag_file)!r}, safe_mode=False)\n"
            "print(json.dumps({'errors': list(bag.import_errors), 'loaded': sorted({\n"
            f"    m.split('.')[0] for m in sys.modules if m.split('.')[0] in {heavy!r}}})}}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == [], result["errors"]
    assert result["loaded"] == [], f"parsing {dag_file} imports {result['loaded']}: import them inside the tasks"
