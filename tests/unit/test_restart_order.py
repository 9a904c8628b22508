"""The restart's eviction order: one pod per workload in turn, so no budget is drained first."""

from kkp_migration.restart import interleaved


def test_consecutive_evictions_hit_different_workloads():
    owners = {f"shop/web-{i}": "web" for i in range(4)} | {f"shop/api-{i}": "api" for i in range(2)} | \
        {"data/db-0": "db"}
    order = interleaved(sorted(owners), owners)[::-1]          # the restart pops from the end
    assert sorted(order) == sorted(owners)
    assert {owners[k] for k in order[:3]} == {"web", "api", "db"}, "one pod of each workload first"
    assert all(owners[a] != owners[b] for a, b in zip(order[:5], order[1:5])), "never the same workload twice in a row"
