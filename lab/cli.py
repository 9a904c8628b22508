"""`python -m lab up | fault | status`: run the lab as a service for the demo and for e2e tests.

`up` writes everything a client needs into --dir (kubeconfigs, the KKP API's URL/token/CA,
Airflow connections, Canal manifests for the runbook's `kubectl delete -f`) and serves until
SIGINT/SIGTERM. `fault` and `status` talk to the running lab's control endpoint.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import threading
from pathlib import Path

import yaml


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def write_files(lab, out: Path, control_url: str, control_token: str) -> dict:
    """The files of `up`; returns the lab.json content."""
    from lab.kkp import canal, versions

    kkp = lab.kkp
    ca_file = out / "ca.crt"
    _write(ca_file, lab.tls.ca_pem.decode(), 0o644)
    seed_config = lab.seed.kubeconfig()
    _write(out / "seed.kubeconfig", yaml.safe_dump(seed_config))
    api = {"url": kkp.url, "token": kkp.token, "ca_file": str(ca_file), "project_id": kkp.project_id}
    _write(out / "kkp-api.json", json.dumps(api, indent=2))
    clusters = []
    for user in kkp.clusters.values():
        path = out / "clusters" / f"{user.id}.kubeconfig"
        _write(path, yaml.safe_dump(user.api.kubeconfig()))
        clusters.append({"id": user.id, "name": user.spec.name, "project_id": user.project_id,
                         "kubeconfig": str(path)})
    for version in versions.allowed("canal"):
        docs = canal.manifest(version)
        _write(out / "manifests" / f"canal_{version}.yaml", yaml.safe_dump_all(docs, sort_keys=False), 0o644)
    connections = kkp.airflow_connections(str(ca_file))
    _write(out / "airflow-connections.json", json.dumps(connections, indent=2))
    info = {"kube_url": lab.kube_url, "kkp_url": kkp.url, "ports": dict(lab.server.ports),
            "control_url": control_url, "control_token": control_token, "ca_file": str(ca_file),
            "project_id": kkp.project_id, "clusters": clusters}
    _write(out / "lab.json", json.dumps(info, indent=2))
    return info


def _parse_faults(specs: list[str]) -> dict[str, dict]:
    """`CLUSTER:name=value` -> {cluster: {name: value}}."""
    out: dict[str, dict] = {}
    for spec in specs:
        target, sep, assignment = spec.partition(":")
        name, eq, value = assignment.partition("=")
        if not sep or not eq or not name:
            raise SystemExit(f"--fault wants CLUSTER:name=value, got {spec!r}")
        out.setdefault(target, {})[name] = value
    return out


def up(args) -> int:
    from lab import scenario
    from lab.kkp.control import make_app, set_faults
    from lab.runtime import Lab

    if args.scenario != "default":
        raise SystemExit(f"unknown scenario {args.scenario!r} (known: default)")
    faults = _parse_faults(args.fault)
    out = Path(args.dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    lab = Lab(time_factor=args.time_factor, kube_port=args.kube_port).start()
    try:
        kkp = lab.install_kkp(port=args.kkp_port)
        scenario.build(kkp, clusters=args.clusters, nodes=args.nodes, pods=args.pods)
        for target, changes in faults.items():
            lab.call(set_faults, lab, target, changes)
        token = secrets.token_urlsafe(24)
        control_port = lab.server.serve("control", make_app(lab, token), 0)
        write_files(lab, out, f"https://{lab.host}:{control_port}", token)
        names = ", ".join(f"{u.spec.name}={u.id}" for u in kkp.clusters.values())
        print(f"lab ready: kube {lab.kube_url} kkp {kkp.url} dir {out} clusters {names}", flush=True)
        stop.wait()
    finally:
        lab.stop()
    print("lab stopped", flush=True)
    return 0


def _control(args, method: str, path: str, body: dict | None = None) -> dict:
    import requests

    info = json.loads((Path(args.dir) / "lab.json").read_text())
    resp = requests.request(method, info["control_url"] + path, json=body, verify=info["ca_file"], timeout=30,
                            headers={"Authorization": f"Bearer {info['control_token']}"})
    data = resp.json()
    if resp.status_code >= 400:
        raise SystemExit(f"lab control: {data.get('error', data)}")
    return data


def fault(args) -> int:
    changes = {}
    for assignment in args.assignments:
        name, eq, value = assignment.partition("=")
        if not eq:
            raise SystemExit(f"fault wants name=value, got {assignment!r}")
        changes[name] = value
    print(json.dumps(_control(args, "POST", "/faults", {"target": args.cluster, "faults": changes}), indent=2))
    return 0


def status(args) -> int:
    data = _control(args, "GET", "/status")
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{'ID':<12} {'NAME':<28} {'CNI':<16} {'PROXY':<9} {'DEPLOYED':<24} {'PODS':<10} LABELS")
    for c in data["clusters"]:
        cni = f"{(c['cni'] or {}).get('type')}/{(c['cni'] or {}).get('version')}"
        deployed = f"{'/'.join(c['deployed']['cni'])} {c['deployed']['proxyMode']}"
        pods = f"{c['pods']['running']}/{c['pods']['total']}"
        labels = ",".join(k for k in c["labels"] if k != "project-id") or "-"
        print(f"{c['id']:<12} {c['name']:<28} {cni:<16} {c['proxyMode']:<9} {deployed:<24} {pods:<10} {labels}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the lab and serve until SIGINT/SIGTERM")
    p_up.add_argument("--dir", required=True)
    p_up.add_argument("--scenario", default="default")
    p_up.add_argument("--time-factor", type=float, default=1.0)
    p_up.add_argument("--kube-port", type=int, default=0)
    p_up.add_argument("--kkp-port", type=int, default=0)
    p_up.add_argument("--clusters", type=int, default=3)
    p_up.add_argument("--nodes", type=int, default=3)
    p_up.add_argument("--pods", type=int, default=12, help="user workload pods per cluster (DaemonSet pods extra)")
    p_up.add_argument("--fault", action="append", default=[], metavar="CLUSTER:name=value")
    p_up.set_defaults(func=up)
    p_fault = sub.add_parser("fault", help="change faults of a running lab")
    p_fault.add_argument("--dir", required=True)
    p_fault.add_argument("--cluster", required=True, help="cluster ID or name, 'seed' or 'kkp'")
    p_fault.add_argument("assignments", nargs="+", metavar="name=value")
    p_fault.set_defaults(func=fault)
    p_status = sub.add_parser("status", help="show the clusters of a running lab")
    p_status.add_argument("--dir", required=True)
    p_status.add_argument("--json", action="store_true")
    p_status.set_defaults(func=status)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
