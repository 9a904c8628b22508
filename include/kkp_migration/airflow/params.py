"""The trigger form every migration DAG shares, and opening the run's cluster from a task.

Param validation in the form catches typos early; `run_config` repeats the checks so a run
triggered through the REST API or `dags test` gets the same one-sentence refusal.
"""

from __future__ import annotations

import re

from airflow.sdk import Param

from ..errors import BadInput
from ..ids import ID_PATTERN

RUNBOOK = "https://docs.kubermatic.com/kubermatic/main/tutorials-howtos/networking/cni-migration/"


def approvers_param(description: str) -> Param:
    return Param([], type="array", items={"type": "string", "minLength": 1}, title="Approvers",
                 description=description, section="Cluster")


def cluster_params() -> dict[str, Param]:
    return {
        "cluster_id": Param("", type="string", title="Cluster ID",
                            description="The KKP cluster ID (metadata.name of the Cluster, e.g. x9k2mp7qzt), "
                                        "not the human-readable name."),
        "project_id": Param(None, type=["null", "string"], title="Project ID",
                            description="The cluster's KKP project. Required with access=api; checked with "
                                        "access=seed when set."),
        "access": Param("seed", type="string", enum=["seed", "api"], title="Access path",
                        values_display={"seed": "Seed cluster (Cluster resource, connection kkp_seed)",
                                        "api": "KKP REST API v2 (connection kkp_api)"},
                        description="How to reach KKP: the seed's Cluster resource, or KKP's REST API (then "
                                    "Project ID is required)."),
        "seed_conn_id": Param("kkp_seed", type="string", title="Seed connection",
                              description="Airflow connection (type kubernetes) to the seed cluster.",
                              section="Connections"),
        "api_conn_id": Param("kkp_api", type="string", title="KKP API connection",
                             description="Airflow connection (type http: host = KKP URL, password = token).",
                             section="Connections"),
        "take_over_lock_from": Param(None, type=["null", "string"], title="Take over the lock of run",
                                     description="Only when a run that stopped half-way is gone for good: its "
                                                 "dag_id/run_id, as the refusal and its report name it. Logged.",
                                     section="Recovery"),
        "approvers": approvers_param("Only these Airflow users may answer this run's approval gates "
                                     "(user ids as the auth manager knows them). Empty: anyone allowed to "
                                     "act on the DAG."),
        "maintenance_window": Param(None, type=["null", "object"], title="Maintenance window",
                                    description='Act only inside this window, e.g. {"days": ["sat"], "start": "02:00", '
                                                '"duration": "3h", "timezone": "Europe/Berlin"} or {"cron": '
                                                '"0 2 * * 6", "duration": "3h", "timezone": "UTC"}. Empty: whenever '
                                                'approved. The fleet sets it from the plan.', section="Schedule"),
        "outside_window": Param("wait", type="string", enum=["wait", "stop"], title="Outside the window",
                                values_display={"wait": "wait for the next window",
                                                "stop": "stop the run with a message"},
                                description="What a closed window means for the run's start and for a step "
                                            "approved after the window closed.", section="Schedule"),
        "fleet_approval": Param(None, type=["null", "object"], title="Fleet approval",
                                description="Set by kkp_fleet_rollout: the approved fleet wave that stands for this "
                                            "run's gates (checked against that fleet run). Leave empty.",
                                section="Schedule"),
        "parallelism": Param(32, type="integer", minimum=1, maximum=256, title="Parallel evictions",
                             description="How many pods are evicted at once during restarts.", section="Tuning"),
        "pdb_wait_seconds": Param(600, type="integer", minimum=0, maximum=7200,
                                  title="Wait for disruption budgets (s)",
                                  description="How long a restart keeps retrying pods a PodDisruptionBudget "
                                              "holds before reporting them as blocked.", section="Tuning"),
    }


def wait_params(**defaults_minutes: float) -> dict[str, Param]:
    """Limits for the run's waits, in minutes: `wait_params(cni_ready=15)` -> cni_ready_timeout_minutes."""
    return {f"{name}_timeout_minutes": Param(minutes, type="number", exclusiveMinimum=0, maximum=24 * 60,
                                             title=f"Wait limit: {name.replace('_', ' ')} (min)",
                                             description="The run fails with what was still missing after this.",
                                             section="Waits")
            for name, minutes in defaults_minutes.items()}


def check_conf(params: dict, allowed: tuple[str, ...]) -> None:
    """Refuse unknown keys and malformed values before anything reaches a cluster."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise BadInput(f"Unknown parameter(s) {', '.join(unknown)}; this DAG takes {', '.join(sorted(allowed))}.")
    cluster_id = params.get("cluster_id") or ""
    if not re.match(ID_PATTERN, cluster_id):
        raise BadInput(f"cluster_id {cluster_id!r} is not a KKP cluster ID (lowercase letters and digits, e.g. "
                       "x9k2mp7qzt); copy it from the cluster's page in KKP.")
    project_id = params.get("project_id") or ""
    if project_id and not re.match(ID_PATTERN, project_id):
        raise BadInput(f"project_id {project_id!r} is not a KKP project ID (lowercase letters and digits).")
    if params.get("access") not in ("seed", "api"):
        raise BadInput(f"access must be seed or api, not {params.get('access')!r}.")
    if params.get("access") == "api" and not project_id:
        raise BadInput(f"Cluster {cluster_id}: access=api needs project_id; set it, or use access=seed.")


def open_kkp(params: dict):
    """KKP access for the run's cluster, through the chosen access path."""
    from .hooks import KkpHook

    return KkpHook(params["access"], params["seed_conn_id"], params["api_conn_id"]).kkp(
        params["cluster_id"], params.get("project_id") or None)


def open_cluster(params: dict):
    """(KkpAccess, UserCluster) for the run's cluster."""
    from .hooks import user_cluster

    kkp = open_kkp(params)
    return kkp, user_cluster(kkp)
