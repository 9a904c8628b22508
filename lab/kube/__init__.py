"""The simulated life of a user cluster: scheduler, kubelets with CNI wiring, workload controllers,
the disruption controller, node lifecycle and machine-controller's MachineDeployments.

`install(cluster)` starts them on a `lab.cluster.Cluster`; call it on the lab's loop
(`lab.call(lambda: install(cluster))`). `lab.kube.workloads` builds the objects they act on.
"""

from __future__ import annotations

import weakref

from .controllers import Controllers

_installed: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def install(cluster) -> Controllers:
    """Start the controllers of `cluster` once; later calls return the running ones."""
    controllers = _installed.get(cluster)
    if controllers is None:
        controllers = Controllers(cluster)
        controllers.start()
        _installed[cluster] = controllers
    return controllers
