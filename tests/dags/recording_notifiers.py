"""Notifiers as an operator plugs them in through [kkp_migration] notifiers, recording what they got.

`record` is a plain callable; `TEXT` a templated Airflow notifier, the shape of SlackNotifier(text=...).
They live in their own module so Airflow's import (by name, from the setting) and the test's import
share one module and one record.
"""

from __future__ import annotations

from airflow.sdk import BaseNotifier

EVENTS: list[dict] = []
TEXTS: list[str] = []


def record(context) -> None:
    EVENTS.append(dict(context["migration_event"]))


class TextNotifier(BaseNotifier):
    template_fields = ("text",)

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def notify(self, context) -> None:
        TEXTS.append(self.text)


TEXT = TextNotifier(text="{{ migration_event.event }}: {{ params.cluster_id }}")
SETTING = "tests.dags.recording_notifiers:record, tests.dags.recording_notifiers:TEXT"
