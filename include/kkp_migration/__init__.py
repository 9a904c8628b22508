"""Turns KKP's manual CNI migration runbook into Airflow DAGs."""
