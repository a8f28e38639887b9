"""What a features run may spend: the per-task :class:`Budget` (reserve an estimate, settle the real cost), the
cost estimates of pending work, and the split of a run's budget over the tasks that may run at the same time (each
task reads the ledger, so a retried task gets no fresh budget)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from adpipeline.features import pricing, schema
from adpipeline.features.pricing import Mode, PriceTable, TokenUsage
from adpipeline.features.schema import Modality


class Budget:
    """Reserve an item's estimated cost before calling; settle with the real cost afterwards."""

    def __init__(self, limit_usd: float, spent_usd: float = 0.0) -> None:
        self.limit = limit_usd
        self.committed = spent_usd
        self._lock = threading.Lock()

    def reserve(self, estimate_usd: float) -> bool:
        with self._lock:
            if self.committed + estimate_usd > self.limit + 1e-12:
                return False
            self.committed += estimate_usd
            return True

    def settle(self, estimate_usd: float, actual_usd: float) -> None:
        with self._lock:
            self.committed += actual_usd - estimate_usd


def estimate_cost(
    prices: PriceTable,
    model: str,
    modality: Modality,
    *,
    width: int | None = None,
    height: int | None = None,
    duration_s: float | None = None,
    has_audio: bool | None = None,
    thinking_budget: int = 0,
    mode: Mode = "online",
) -> tuple[TokenUsage, float]:
    """Expected tokens and USD of one extraction call (see :func:`pricing.estimate_usage`)."""
    usage = pricing.estimate_usage(
        schema.render_prompt(modality),
        width=width,
        height=height,
        duration_s=duration_s,
        has_audio=has_audio,
        video=modality == "video",
        thinking_tokens=thinking_budget,
    )
    return usage, prices.cost(model, usage, mode)


def pending_estimate(
    prices: PriceTable, model: str, modality: Modality, rows: Any, thinking_budget: int = 0, mode: Mode = "online"
) -> float:
    """USD the rows of a ``select_pending_*`` query (a DataFrame: ``width``, ``height``, and for videos
    ``duration_s``, ``has_audio``) are expected to cost, for budget shares."""

    import pandas as pd

    def known(value: Any) -> Any:
        return None if value is None or pd.isna(value) else value  # NaN / NA -> None

    total = 0.0
    for row in rows.itertuples(index=False):
        audio = known(getattr(row, "has_audio", None))
        width, height, duration = (known(getattr(row, name, None)) for name in ("width", "height", "duration_s"))
        total += estimate_cost(
            prices,
            model,
            modality,
            width=None if width is None else int(width),
            height=None if height is None else int(height),
            duration_s=None if duration is None else float(duration),
            has_audio=None if audio is None else bool(audio),
            thinking_budget=thinking_budget,
            mode=mode,
        )[1]
    return total


def split_budget(estimates: Sequence[float]) -> list[float]:
    """Shares of the run budget (summing to 1) for tasks that may run at the same time, proportional to their
    estimated cost; equal shares when nothing is estimated.

    Tasks of one DAG run (the image and video tasks, or the mapped chunk tasks of one run) do not see each other's
    reservations, so each may only spend its share: the shares add up to the run budget, so concurrent tasks
    cannot overspend it together. Fix the shares once (when the work is planned) and pass each task its own."""
    total = sum(max(e, 0.0) for e in estimates)
    if total <= 0:
        return [1.0 / len(estimates)] * len(estimates) if estimates else []
    return [max(e, 0.0) / total for e in estimates]


def task_budget(
    warehouse: Any,
    run_id: str,
    run_budget_usd: float,
    *,
    modality: Modality,
    share: float = 1.0,
    creative_ids: Sequence[str] = (),
) -> Budget:
    """The :class:`Budget` of one task of a DAG run: at most ``share`` of the run budget, and never more than what
    the rest of the run left.

    From the ledger (``genai_usage`` by ``run_id``): ``task_usd`` is what this run already spent on this task's
    items (``modality``, restricted to ``creative_ids`` when given: a chunk), ``run_usd`` what the whole run spent.
    The task may spend ``min(share * budget, budget - (run_usd - task_usd))`` in all, ``task_usd`` of it already:
    a retried task gets no fresh budget, and a task that starts after others finished cannot take what they
    spent."""
    spend = warehouse.query_file(
        "features/select_run_spend", {"run_id": run_id, "modality": modality, "creative_ids": list(creative_ids)}
    )
    run_usd = float(spend.iloc[0]["run_usd"] or 0.0)
    task_usd = float(spend.iloc[0]["task_usd"] or 0.0)
    limit = min(share * run_budget_usd, run_budget_usd - (run_usd - task_usd))
    return Budget(max(limit, 0.0), task_usd)
