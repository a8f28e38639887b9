"""Adjusted feature effects: one binomial GLM over all feature values at once, with campaign and week effects.

The warehouse aggregates ``ads_enriched`` into cells of (creative, campaign, week)
(``sql/final/select_effect_cells.sql``) and lists each creative's feature values
(``sql/final/select_unit_features.sql``); this module fits

    logit(CTR of a cell) = intercept + sum of the creative's feature-value terms + campaign + week

with statsmodels (clicks out of impressions, binomial, logit link) and standard errors clustered by creative (cells of
one creative share its audience, so they are not independent). Terms:

- a value of a feature a creative has many of (promotion, colour, brand, face, customer) is a 0/1 "has it" term: its
  effect is with the value against without it;
- a feature with one value per creative (media type, call to action, style, ...) drops its most common value, the
  reference: the other values' effects are against it (creatives without the feature count with the reference);
- a value enters only with ``min_impressions`` impressions over at least two creatives, and at most ``max_values``
  values per feature (most impressions first).

Above ``max_cells`` cells the model is fitted on a fixed sample of whole creatives (the first hex digits of their ids),
so memory stays bounded; the intervals then reflect the sample.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from adpipeline.tables import FeatureEffect
from adpipeline.warehouse import Warehouse

log = logging.getLogger(__name__)

MULTI_VALUED = frozenset({"promotion", "color", "brand", "face", "customer"})
Z95 = 1.959964


@dataclass(frozen=True)
class Term:
    feature: str
    value: str
    n_creatives: int
    impressions: int


def unit_cut(n_cells: int, max_cells: int) -> str:
    """The ``@unit_cut`` that keeps about ``max_cells`` of ``n_cells`` cells: ids are hex, so the share of ids whose
    first four digits sort below a cut is cut / 65536. ``''``: keep all."""
    if n_cells <= max_cells:
        return ""
    share = max_cells / n_cells
    return f"{max(1, math.floor(share * 65536)):04x}"


def fit_feature_effects(wh: Warehouse, *, min_impressions: int, max_cells: int, max_values: int) -> list[FeatureEffect]:
    """Fit the model on the warehouse's ``ads_enriched`` and return one row per modelled feature value, with the
    unadjusted lift of ``feature_performance`` beside it."""
    counts = wh.query_file("final/count_effect_cells").iloc[0]
    cut = unit_cut(int(counts["n_cells"]), max_cells)
    cells = wh.query_file("final/select_effect_cells", params={"unit_cut": cut})
    values = wh.query_file("final/select_unit_features", params={"unit_cut": cut})
    unadjusted = (
        wh.query("SELECT feature, value, lift, flag FROM {{ feature_performance }}")
        if wh.table_exists("feature_performance")
        else pd.DataFrame(columns=["feature", "value", "lift", "flag"])
    )
    if cut:
        log.info(
            "feature_effects: %d cells over the cap %d, fitted on a sample (%s)", counts["n_cells"], max_cells, cut
        )
    return fit_cells(cells, values, unadjusted, min_impressions=min_impressions, max_values=max_values)


def fit_cells(
    cells: pd.DataFrame,
    values: pd.DataFrame,
    unadjusted: pd.DataFrame,
    *,
    min_impressions: int,
    max_values: int,
) -> list[FeatureEffect]:
    """The model on given cells (``unit_id, campaign, week, n, k``) and unit feature values (``unit_id, feature,
    value``); ``unadjusted`` holds ``feature, value, lift, flag`` of ``feature_performance``."""
    import statsmodels.api as sm

    # A fixed order (the warehouse returns rows in any order): the same data gives the same columns and references.
    cells = cells[cells["n"] > 0].sort_values(["unit_id", "campaign", "week"]).reset_index(drop=True)
    values = values.sort_values(["unit_id", "feature", "value"]).reset_index(drop=True)
    if cells.empty:
        return []
    unit_codes, units = pd.factorize(cells["unit_id"])
    unit_index = pd.Index(units)
    unit_n = np.bincount(unit_codes, weights=cells["n"].to_numpy(float))
    values = values[values["unit_id"].isin(unit_index)]
    terms, columns = _feature_terms(values, unit_index, unit_n, min_impressions, max_values)
    campaigns = _dummies(cells["campaign"].astype(str))
    weeks = _dummies(cells["week"].astype(int).astype(str), reference="first")
    x_units = np.zeros((len(units), len(terms)), dtype=np.float64)
    for j, unit_rows in enumerate(columns):
        x_units[unit_rows, j] = 1.0
    exog = np.hstack([np.ones((len(cells), 1)), x_units[unit_codes], campaigns, weeks])
    del x_units
    # Terms that are linear combinations of earlier ones (two features always together, a value only in one
    # campaign) cannot be told apart: they are left out, the earlier ones kept.
    keep = _independent_columns(exog)
    dropped = [terms[j - 1] for j in range(1, len(terms) + 1) if j not in keep]
    if dropped:
        log.info("feature_effects: %d value(s) collinear with others, left out: %s", len(dropped), dropped[:10])
    position = {j: i for i, j in enumerate(keep)}
    exog = exog[:, keep]
    n = cells["n"].to_numpy(float)
    k = np.minimum(cells["k"].to_numpy(float), n)
    model = sm.GLM(np.column_stack([k, n - k]), exog, family=sm.families.Binomial())
    result = model.fit(cov_type="cluster", cov_kwds={"groups": unit_codes})
    params = np.asarray(result.params)
    se = np.asarray(result.bse)
    pvalues = np.asarray(result.pvalues)
    lookup = {(str(r.feature), str(r.value)): r for r in unadjusted.itertuples(index=False)}
    rows: list[FeatureEffect] = []
    for j, term in enumerate(terms, start=1):
        if j not in position:
            continue
        i = position[j]
        beta, s, p = float(params[i]), float(se[i]), float(pvalues[i])
        finite = math.isfinite(beta) and math.isfinite(s) and abs(beta) + Z95 * s < 700
        low = math.exp(beta - Z95 * s) if finite else None
        high = math.exp(beta + Z95 * s) if finite else None
        odds = math.exp(beta) if finite else None
        flag = None
        if low is not None and high is not None:
            flag = "above" if low > 1 else "below" if high < 1 else None
        un = lookup.get((term.feature, term.value))
        un_lift = _number(getattr(un, "lift", None))
        un_flag = getattr(un, "flag", None) if un is not None and isinstance(un.flag, str) else None
        rows.append(
            FeatureEffect(
                feature=term.feature,
                value=term.value,
                n_creatives=term.n_creatives,
                impressions=term.impressions,
                odds_ratio=odds,
                odds_ratio_low=low,
                odds_ratio_high=high,
                p_value=p if math.isfinite(p) else None,
                adjusted_lift=None if odds is None else odds - 1,
                adjusted_flag=flag,
                unadjusted_lift=un_lift,
                unadjusted_flag=un_flag,
                disagreement=disagreement(odds, flag, un_lift, un_flag),
                model_creatives=len(units),
                model_cells=len(cells),
                model_terms=exog.shape[1],
            )
        )
    return rows


def disagreement(odds: float | None, flag: str | None, un_lift: float | None, un_flag: str | None) -> str | None:
    """``sign`` where both are flagged and point opposite ways, ``significance`` where one is flagged and the other
    not, else None."""
    if odds is None or un_lift is None:
        return None
    if flag and un_flag and flag != un_flag:
        return "sign"
    if bool(flag) != bool(un_flag):
        return "significance"
    return None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _feature_terms(
    values: pd.DataFrame, units: pd.Index, unit_n: np.ndarray, min_impressions: int, max_values: int
) -> tuple[list[Term], list[np.ndarray]]:
    """The modelled values and, for each, the positions (in ``units``) of the creatives that have it."""
    terms: list[Term] = []
    members: list[np.ndarray] = []
    if values.empty:
        return terms, members
    positions = units.get_indexer(values["unit_id"])
    frame = pd.DataFrame(
        {"feature": values["feature"].astype(str), "value": values["value"].astype(str), "pos": positions}
    )
    frame["n"] = unit_n[frame["pos"].to_numpy()]
    for feature, group in frame.groupby("feature", sort=True):
        stats = (
            group.groupby("value")
            .agg(m=("pos", "size"), n=("n", "sum"))
            .sort_index()
            .sort_values(["n", "m"], ascending=False, kind="stable")
        )
        if feature not in MULTI_VALUED:
            stats = stats.iloc[1:]  # the most common value is the reference
        stats = stats[(stats["m"] >= 2) & (stats["n"] >= min_impressions)].head(max_values)
        by_value = group.groupby("value")["pos"]
        for value, row in stats.iterrows():
            pos = by_value.get_group(value).to_numpy()
            # A value every modelled creative has is the intercept's, not a term.
            if len(pos) == len(units):
                continue
            terms.append(Term(str(feature), str(value), int(row["m"]), int(row["n"])))
            members.append(pos)
    return terms, members


def _independent_columns(exog: np.ndarray, tolerance: float = 1e-9) -> list[int]:
    """Indices of the columns to keep: each one not (numerically) a linear combination of the ones kept before it,
    judged on the scaled Gram matrix (terms x terms, cheap however many cells)."""
    gram = exog.T @ exog
    scale = np.sqrt(np.maximum(np.diag(gram), 1e-300))
    gram = gram / np.outer(scale, scale)
    keep: list[int] = []
    for j in range(gram.shape[0]):
        candidate = keep + [j]
        sub = gram[np.ix_(candidate, candidate)]
        if np.linalg.eigvalsh(sub).min() > tolerance:
            keep.append(j)
    return keep


def _dummies(labels: pd.Series, reference: str = "most") -> np.ndarray:
    """0/1 columns for a categorical, without its reference level (the most common, or the first in order)."""
    counts = labels.value_counts().sort_index().sort_values(ascending=False, kind="stable")
    if len(counts) <= 1:
        return np.zeros((len(labels), 0))
    ref = counts.index[0] if reference == "most" else sorted(counts.index, key=lambda v: int(v))[0]
    levels = [v for v in counts.index if v != ref]
    codes = pd.Categorical(labels, categories=levels).codes
    out = np.zeros((len(labels), len(levels)))
    hit = codes >= 0
    out[np.nonzero(hit)[0], codes[hit]] = 1.0
    return out
