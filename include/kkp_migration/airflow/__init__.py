"""The only part of the migration library that imports Airflow: hooks, triggers, sensors, gates."""
