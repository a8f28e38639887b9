"""Human summaries of the output tables (the demo's last screen, ``adpipeline summary``)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from adpipeline.console_tables import FitTable
from adpipeline.settings import Settings
from adpipeline.tables import TABLES
from adpipeline.warehouse import Warehouse, get_warehouse

if TYPE_CHECKING:
    import pandas as pd


def _table(title: str, frame: pd.DataFrame, columns: list[str] | None = None) -> FitTable:
    columns = columns or list(frame.columns)
    return FitTable(title, columns, ([_fmt(v) for v in record] for record in frame[columns].itertuples(index=False)))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if value == value else ""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return ", ".join(_tail(v) for v in value[:4]) + (" …" if len(value) > 4 else "")
    return "" if value is None else _tail(value)


def _tail(value: object) -> str:
    """File names rather than long paths/URLs, so tables fit a terminal."""
    text = str(value)
    return text.rsplit("/", 1)[-1] if "/" in text else text


def print_summary(settings: Settings, console: Console) -> None:
    with get_warehouse(settings) as wh:
        _print(wh, settings, console)


def _print(wh: Warehouse, settings: Settings, console: Console) -> None:
    counts = []
    for name in TABLES:
        if wh.table_exists(name):
            n = int(wh.query(f"SELECT COUNT(*) AS n FROM {{{{ {name} }}}}").iloc[0]["n"])
            counts.append(f"{name}={n}")
    console.print("tables: " + "  ".join(counts))
    if wh.table_exists("run_warnings"):
        warned = wh.query(
            "SELECT created_at, stage, failed, total, message FROM {{ run_warnings }} ORDER BY created_at DESC LIMIT 10"
        )
        for record in warned.itertuples(index=False):
            console.print(f"[yellow]warning[/] {str(record.created_at)[:19]}: {record.message}", highlight=False)
    if wh.table_exists("media_fetches"):
        console.print(
            _table(
                "fetch status",
                wh.query(
                    "SELECT media_type, status, COUNT(*) AS n FROM {{ media_fetches }} GROUP BY 1, 2 ORDER BY 1, 2"
                ),
            )
        )
    if wh.table_exists("duplicate_groups"):
        console.print(
            _table(
                "largest near-duplicate groups (dHash candidates confirmed by a finer check)",
                wh.query(
                    """SELECT g.group_id, ANY_VALUE(g.group_size) AS members,
                      MAX(g.hamming_to_canonical) AS max_hamming,
                      ARRAY_AGG(c.url ORDER BY c.url) AS urls
               FROM {{ duplicate_groups }} AS g JOIN {{ creatives }} AS c USING (creative_id)
               WHERE g.group_size > 1 GROUP BY g.group_id ORDER BY members DESC, g.group_id LIMIT 8"""
                ),
            )
        )
        groups = wh.query("SELECT COUNT(DISTINCT group_id) AS g, COUNT(*) AS n FROM {{ duplicate_groups }}").iloc[0]
        console.print(f"{int(groups['n'])} images fall into {int(groups['g'])} distinct creatives")
    if wh.table_exists("image_features"):
        console.print(
            _table(
                "image features (canonical creatives)",
                wh.query(
                    """SELECT provider, status, COUNT(*) AS n, COUNTIF(has_text) AS with_text,
                      COUNTIF(ARRAY_LENGTH(promotions) > 0) AS with_promotion,
                      COUNTIF(call_to_action IS NOT NULL) AS with_cta
               FROM {{ image_features }} GROUP BY 1, 2 ORDER BY 1, 2"""
                ),
            )
        )
    if wh.table_exists("genai_usage"):
        console.print(
            _table(
                "model spend (genai_usage: one row per call; offline calls cost nothing)",
                wh.query("""SELECT provider, model, mode, COUNT(*) AS calls, COUNTIF(status = 'ok') AS ok,
                      SUM(input_text_tokens + input_image_tokens + input_video_tokens + input_audio_tokens) AS tok_in,
                      SUM(output_tokens + thinking_tokens) AS tok_out, ROUND(SUM(cost_usd), 4) AS usd
               FROM {{ genai_usage }} GROUP BY 1, 2, 3 ORDER BY usd DESC, calls DESC"""),
            )
        )
    if wh.table_exists("face_performance"):
        console.print(
            _table(
                "faces by CTR (the __no_face__ row is the baseline)",
                wh.query(
                    """SELECT face_id, n_videos, n_ads, impressions, clicks, ROUND(ctr * 100, 3) AS ctr_pct,
                      ROUND(cvr * 100, 2) AS cvr_pct, ROUND(cpa, 2) AS cpa, best_crop_path
               FROM {{ face_performance }} ORDER BY ctr DESC LIMIT 10"""
                ),
            )
        )
    if wh.table_exists("ads_enriched"):
        console.print(
            _table(
                "ads_enriched by media type",
                wh.query(
                    """SELECT media_type, COUNT(*) AS ad_rows, COUNT(DISTINCT creative_id) AS creatives,
                      COUNT(DISTINCT canonical_creative_id) AS distinct_creatives,
                      ROUND(SAFE_DIVIDE(SUM(clicks), SUM(impressions)) * 100, 3) AS ctr_pct,
                      ROUND(SUM(spend), 2) AS spend
               FROM {{ ads_enriched }} GROUP BY 1 ORDER BY 1"""
                ),
            )
        )
    if settings.warehouse_backend == "duckdb":
        path = settings.resolved_duckdb_path.resolve()
        console.print(
            "\nQuery the results:\n"
            f'  adpipeline query "SELECT * FROM {{{{ ads_enriched }}}} LIMIT 5"\n'
            f"  python -c \"import duckdb; print(duckdb.connect('{path}', read_only=True)"
            ".sql('SELECT * FROM face_performance'))\""
        )


def export_faces(settings: Settings, out_dir: Path) -> tuple[Path, Path, int]:
    """Write ``faces.csv`` (face_performance) and ``face_crops.zip`` (each face's best crop) into ``out_dir``."""
    from adpipeline.bucket import Bucket

    out_dir.mkdir(parents=True, exist_ok=True)
    bucket = Bucket.for_settings(settings)
    with get_warehouse(settings) as wh:
        frame = wh.query("SELECT * FROM {{ face_performance }} ORDER BY ctr DESC, face_id")
    csv_path, zip_path = out_dir / "faces.csv", out_dir / "face_crops.zip"
    frame.to_csv(csv_path, index=False)
    n = 0
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for record in frame.itertuples(index=False):
            key = bucket.key_of(record.best_crop_path)
            if key is None or not bucket.exists(key):
                continue
            archive.writestr(f"{record.face_id}.jpg", bucket.get_bytes(key))
            n += 1
    return csv_path, zip_path, n


REPORT_TABLES = {
    # what: (table, order)
    "fatigue": ("creative_fatigue", "fatigued DESC, ctr_change, unit_id"),
    "effects": ("feature_effects", "feature, value"),
}


def export_table(settings: Settings, what: str, out_dir: Path) -> tuple[Path, int]:
    """Write ``<what>.csv`` (``creative_fatigue`` for fatigue, ``feature_effects`` for effects) into ``out_dir``; list
    columns (a creative's daily figures) are written ``;``-separated. An empty table (never built) writes a header."""
    from adpipeline.tables import TABLES as SPECS
    from adpipeline.warehouse.schema import columns

    table, order = REPORT_TABLES[what]
    out_dir.mkdir(parents=True, exist_ok=True)
    with get_warehouse(settings) as wh:
        if wh.table_exists(table):
            frame = wh.query(f"SELECT * FROM {{{{ {table} }}}} ORDER BY {order}")
        else:
            import pandas as pd

            frame = pd.DataFrame(columns=[c.name for c in columns(SPECS[table].model)])
    for column in frame.columns:
        if frame[column].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any():
            frame[column] = frame[column].map(lambda v: ";".join(str(x) for x in v))
    path = out_dir / f"{what}.csv"
    frame.to_csv(path, index=False)
    return path, len(frame)
