"""The leaderboard as table rows: shared by ``tzbench leaderboard`` and the HTML report (torch-free)."""

from __future__ import annotations

from typing import Any

__all__ = ["board_table"]


def board_table(rows: list[Any], view: str, subset: str, recognizer: str) -> tuple[list[dict[str, Any]], list[str]]:
    """:meth:`Store.leaderboard` rows as table dicts and their columns.

    ``view`` ``judges``: one column per judge that read any ranked run on ``subset``, the ranking
    judge first, then registry.yaml's default judges, then the rest by name. ``subsets``:
    ``recognizer``'s accuracy per subset (``acc_<subset>``).
    """
    # Competition ranking: equal scores share a rank (1, 2, 2, 4), never ordered by chance.
    ranks = [1 + sum(1 for o in rows if o.score > r.score) for r in rows]
    base = [{"rank": rank, "model": r.sr_model, "run": r.run_id, "psnr": r.values.get("psnr"),
             "ssim": r.values.get("ssim"), "n": r.n_samples,
             "comparable": "yes" if r.comparable else f"no: {r.reason or 'see runs show'}"}
            for rank, r in zip(ranks, rows)]
    tail = ["psnr", "ssim", "n", *(["comparable"] if any(not r.comparable for r in rows) else [])]
    if view == "subsets":
        for row, r in zip(base, rows):
            row.update(r.values)
        return base, ["rank", "model", "run", "acc_easy", "acc_medium", "acc_hard", "acc_all", *tail]
    from tzbench.registry import load_registry

    seen = {j for r in rows for j, by_subset in r.judges.items() if subset in by_subset}
    order = [recognizer, *load_registry().default_judges, *sorted(seen)]
    judges = [j for i, j in enumerate(order) if j in seen and j not in order[:i]]
    for row, r in zip(base, rows):
        row.update({j: r.judges.get(j, {}).get(subset) for j in judges})
    return base, ["rank", "model", "run", *judges, *tail]
