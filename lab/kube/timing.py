"""Simulated durations of the cluster's life, in seconds; the lab's clock scales them all."""

POD_START = 2.0            # a bound pod's sandbox and containers starting
JOB_RUN = 5.0              # a Job pod's work when its template names no run time
NODE_JOIN = 20.0           # a new machine's kubelet registering until its node is Ready
EVICTION_RETRY = 5.0       # a drain waiting before it asks again (kubectl drain's interval)
CRASH_BACKOFF = 10.0       # the kubelet's first back-off after a container crash, doubling
CRASH_BACKOFF_MAX = 300.0
