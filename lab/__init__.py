"""A simulated KKP installation (seed cluster, KKP REST API v2, user clusters) behind real HTTP APIs.

Tests, benchmarks and the local demo talk to it through the same `kubernetes` client,
`kubernetes_asyncio` and `kubectl` that talk to real clusters. Product code never imports it.
"""
