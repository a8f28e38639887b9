"""The insights page: a FastAPI app that the Airflow plugin (``plugins/adpipeline_insights.py``) mounts.

Airflow does not authenticate a plugin's app by itself, and this package must not import Airflow, so the plugin hands
in Airflow's own security dependencies: ``read_dependency`` guards every route (a logged-in user; anonymous gets
401), ``run_dependency`` additionally guards running a verification (a stronger permission). Tests hand in their own.
"""

from __future__ import annotations

import base64
import datetime as dt
import tempfile
from collections.abc import Callable, Generator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from pydantic import BaseModel

from adpipeline.bucket import Bucket
from adpipeline.faces.engine import FaceEngineUnavailable
from adpipeline.insights import charts
from adpipeline.insights.media import (
    FACE_ID,
    THUMB_SIDES,
    UploadError,
    best_frame_jpeg,
    blob_thumbnail,
    check_image_upload,
    check_video_upload,
    crop_bytes,
)
from adpipeline.insights.queries import FEATURE_LABELS, InsightsReader
from adpipeline.settings import Settings, get_settings
from adpipeline.warehouse import Warehouse, get_warehouse

STATIC_FILES = {"insights.css": "text/css; charset=utf-8"}
"""The only static assets, shipped in the package; a request names one of these, never a path."""
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Everything comes from this host; the page may be framed only by the Airflow UI on the same origin.
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'self'; base-uri 'none'",
}


class Verifier(Protocol):
    """``adpipeline.faces.verify.verify``: is the person in this photo in this video."""

    def __call__(self, image: bytes, video: Path, settings: Settings, /) -> BaseModel: ...


def create_app(
    *,
    read_dependency: Callable[..., Any],
    run_dependency: Callable[..., Any],
    settings: Settings | None = None,
    warehouse_factory: Callable[[], Warehouse] | None = None,
    verifier: Verifier | None = None,
) -> FastAPI:
    """The insights app. ``read_dependency`` runs on every route, ``run_dependency`` also on the verify POSTs; both are
    FastAPI dependencies that raise 401/403. ``verifier`` defaults to ``adpipeline.faces.verify.verify``."""
    app = FastAPI(
        title="adpipeline insights",
        dependencies=[Depends(read_dependency)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    state = _State(settings, warehouse_factory, verifier)
    env = Environment(loader=PackageLoader("adpipeline.insights", "templates"), autoescape=select_autoescape())
    env.filters.update(pct=_pct, num=_num, money=_money, signed_pct=_signed_pct)
    env.globals["feature_labels"] = FEATURE_LABELS

    def render(request: Request, template: str, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(page_name=template.removesuffix(".html"), **context)
        return HTMLResponse(html, headers=_SECURITY_HEADERS)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Any]) -> Response:
        """Refuse a request body over the upload cap before it is read (by its Content-Length, and by counting)."""
        if request.method == "POST":
            cap = _body_cap(state.settings)
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > cap):
                return JSONResponse({"detail": f"request body is over the cap of {cap} bytes"}, status_code=413)
            if length is None:
                return JSONResponse({"detail": "a Content-Length is required"}, status_code=411)
            origin = request.headers.get("origin")
            if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
                return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        response: Response = await call_next(request)
        return response

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> Response:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)

    # --- pages ------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("faces", status_code=307)

    @app.get("/faces", response_class=HTMLResponse)
    def faces_page(request: Request, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
        with state.reader() as reader:
            rows, info = reader.faces(page, state.settings.insights_page_size)
            baseline = reader.face_baseline()
        chart = charts.interval_chart(
            [charts.Estimate(r.face_id, _first(r.ctr_estimate, r.ctr), r.ctr_low, r.ctr_high, r.flag) for r in rows],
            baseline.baseline_ctr,
            baseline_label="no face",
        )
        return render(request, "faces.html", rows=rows, info=info, baseline=baseline, chart=Markup(chart))

    @app.get("/duplicates", response_class=HTMLResponse)
    def duplicates_page(request: Request, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
        with state.reader() as reader:
            groups, info, summary = reader.duplicate_groups(page, state.settings.insights_page_size)
        return render(request, "duplicates.html", groups=groups, info=info, summary=summary)

    @app.get("/features", response_class=HTMLResponse)
    def features_page(
        request: Request,
        feature: Annotated[str, Query(pattern="^[a-z_]{1,40}$")] = "cta_kind",
        start: dt.date | None = None,
        end: dt.date | None = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    ) -> HTMLResponse:
        if feature not in FEATURE_LABELS:
            raise HTTPException(404, f"no feature {feature!r}")
        if start and end and start > end:
            raise HTTPException(422, "start is after end")
        with state.reader() as reader:
            overview = reader.feature_overview()
            first, last = reader.ads_range()
            rows, info = reader.feature_values(
                feature, page, state.settings.insights_page_size, start, end, state.settings.feature_min_impressions
            )
            # The adjusted model is fitted over all dates: shown beside the all-dates figures only.
            effects = reader.feature_effects(feature) if start is None and end is None else {}
        baseline = rows[0].baseline_ctr if len(rows) == 1 else None
        chart = charts.interval_chart(
            [charts.Estimate(r.value, _first(r.ctr_estimate, r.ctr), r.ctr_low, r.ctr_high, r.flag) for r in rows],
            baseline,
        )
        return render(
            request,
            "features.html",
            overview=overview,
            feature=feature,
            rows=rows,
            info=info,
            start=start,
            end=end,
            first=first,
            last=last,
            chart=Markup(chart),
            min_impressions=state.settings.feature_min_impressions,
            effects=effects,
        )

    @app.get("/fatigue", response_class=HTMLResponse)
    def fatigue_page(
        request: Request,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        only_fatigued: bool = False,
    ) -> HTMLResponse:
        with state.reader() as reader:
            rows, info, summary = reader.fatigue(page, state.settings.insights_page_size, only_fatigued)
        charts_by_unit = {
            r.unit_id: Markup(
                charts.decay_chart(
                    r.day_index,
                    r.day_impressions,
                    r.day_clicks,
                    overdispersion=r.overdispersion,
                    intercept=r.fitted_intercept,
                    decay=r.decay,
                    fatigued=r.fatigued,
                )
            )
            for r in rows
        }
        return render(
            request,
            "fatigue.html",
            rows=rows,
            info=info,
            summary=summary,
            charts=charts_by_unit,
            only_fatigued=only_fatigued,
            min_drop=state.settings.fatigue_min_drop,
            min_impressions=state.settings.fatigue_min_impressions,
        )

    @app.get("/spend", response_class=HTMLResponse)
    def spend_page(request: Request, start: dt.date | None = None, end: dt.date | None = None) -> HTMLResponse:
        with state.reader() as reader:
            first, last = reader.spend_range()
            start = start or first or dt.date(1970, 1, 1)
            end = end or last or start
            if start > end:
                raise HTTPException(422, "start is after end")
            days, modalities, runs = reader.spend(start, end)
        columns = sorted({d.day.isoformat() for d in days})
        series: dict[str, list[float]] = {}
        for d in days:
            series.setdefault(f"{d.provider} / {d.model}", [0.0] * len(columns))[columns.index(d.day.isoformat())] += (
                d.cost_usd
            )
        tokens = {
            "text in": sum(m.text_tokens for m in modalities),
            "image in": sum(m.image_tokens for m in modalities),
            "video in": sum(m.video_tokens for m in modalities),
            "audio in": sum(m.audio_tokens for m in modalities),
            "cached": sum(m.cached_tokens for m in modalities),
            "output": sum(m.output_tokens for m in modalities),
        }
        budget = state.settings.run_budget_usd
        return render(
            request,
            "spend.html",
            days=days,
            modalities=modalities,
            runs=runs,
            start=start,
            end=end,
            budget=budget,
            total=sum(d.cost_usd for d in days),
            spend_chart=Markup(charts.stacked_bars(columns, series)),
            token_chart=Markup(charts.hbars(tokens)),
        )

    @app.get("/verify", response_class=HTMLResponse)
    def verify_form(request: Request) -> HTMLResponse:
        return render(request, "verify.html", result=None, error=None, caps=_caps(state.settings))

    @app.post("/verify", response_class=HTMLResponse, dependencies=[Depends(run_dependency)])
    def verify_page(
        request: Request,
        image: Annotated[UploadFile | None, File()] = None,
        video: Annotated[UploadFile | None, File()] = None,
        image_url: Annotated[str, Form(max_length=2048)] = "",
        video_url: Annotated[str, Form(max_length=2048)] = "",
    ) -> HTMLResponse:
        try:
            result, frame = state.run_verify(image, video, image_url, video_url, with_frame=True)
        except UploadError as exc:
            response = render(request, "verify.html", result=None, error=exc.reason, caps=_caps(state.settings))
            response.status_code = exc.status
            return response
        return render(
            request,
            "verify.html",
            result=result,
            fields=[(k, v) for k, v in result.model_dump(mode="json").items() if v not in (None, "")],
            best_frame=base64.b64encode(frame).decode() if frame else None,
            error=None,
            caps=_caps(state.settings),
        )

    # --- JSON API -----------------------------------------------------------------------------
    @app.post("/api/verify", dependencies=[Depends(run_dependency)])
    def verify_api(
        image: Annotated[UploadFile | None, File()] = None,
        video: Annotated[UploadFile | None, File()] = None,
        image_url: Annotated[str, Form(max_length=2048)] = "",
        video_url: Annotated[str, Form(max_length=2048)] = "",
    ) -> JSONResponse:
        result, _frame = state.run_verify(image, video, image_url, video_url)
        return JSONResponse(result.model_dump(mode="json"), headers=_SECURITY_HEADERS)

    @app.get("/api/faces")
    def faces_api(page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> JSONResponse:
        with state.reader() as reader:
            rows, info = reader.faces(page, state.settings.insights_page_size)
            baseline = reader.face_baseline()
        return JSONResponse(
            {
                "page": info.number,
                "pages": info.pages,
                "total": info.total,
                "baseline": baseline.model_dump(mode="json"),
                "faces": [r.model_dump(mode="json") for r in rows],
            }
        )

    # --- images and assets ------------------------------------------------------------------------
    @app.get("/media/{sha256}/{side}.jpg")
    def media_thumbnail(sha256: str, side: int) -> Response:
        if side not in THUMB_SIDES:
            raise HTTPException(404, "no such thumbnail size")
        data = blob_thumbnail(state.bucket, sha256, side, state.settings.max_image_pixels)
        return Response(data, media_type="image/jpeg", headers=_image_headers())

    @app.get("/faces/{face_id}/crop.jpg")
    def face_crop(face_id: str) -> Response:
        if not FACE_ID.fullmatch(face_id):
            raise HTTPException(404, "no such face")
        with state.reader() as reader:
            uri = reader.face_crop_uri(face_id)
        return Response(crop_bytes(state.bucket, uri), media_type="image/jpeg", headers=_image_headers(private=True))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, "no such asset")
        data = resources.files("adpipeline.insights").joinpath("static", name).read_bytes()
        return Response(data, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=3600"})

    return app


class _State:
    """What the routes share: settings, bucket, the warehouse factory and the verifier (all made lazily)."""

    def __init__(
        self,
        settings: Settings | None,
        warehouse_factory: Callable[[], Warehouse] | None,
        verifier: Verifier | None,
    ) -> None:
        self._settings = settings
        self._warehouse_factory = warehouse_factory
        self._verifier = verifier
        self._bucket: Bucket | None = None
        self.known_tables: set[str] = set()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    @property
    def bucket(self) -> Bucket:
        if self._bucket is None:
            self._bucket = Bucket(self.settings.resolved_bucket_url)
        return self._bucket

    @contextmanager
    def reader(self) -> Generator[InsightsReader, None, None]:
        """A reader over a warehouse connection opened for this request only (the DAGs write the same file)."""
        warehouse = self._warehouse_factory() if self._warehouse_factory else get_warehouse(self.settings)
        try:
            yield InsightsReader(warehouse, self.known_tables)
        finally:
            warehouse.close()

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            try:
                from adpipeline.faces.verify import verify
            except ImportError as exc:
                raise UploadError(503, f"verification is not available here: {exc}") from exc
            self._verifier = verify
        verifier: Verifier = self._verifier
        return verifier

    def run_verify(
        self,
        image: UploadFile | None,
        video: UploadFile | None,
        image_url: str,
        video_url: str,
        *,
        with_frame: bool = False,
    ) -> tuple[BaseModel, bytes | None]:
        """Check the inputs like fetched media, run the verifier on a temporary copy of the video (removed after),
        and, when asked, cut out the best frame while the copy exists."""
        s = self.settings
        image_bytes = check_image_upload(self._read(image, image_url, "image", s.max_image_bytes), s)
        video_cap = min(s.max_video_bytes, s.insights_max_upload_bytes)
        video_bytes = check_video_upload(self._read(video, video_url, "video", video_cap), s)
        verifier = self.verifier
        with tempfile.TemporaryDirectory(prefix="adp-verify-") as tmp:
            path = Path(tmp) / "video"  # our name, never the client's
            path.write_bytes(video_bytes)
            try:
                result = verifier(image_bytes, path, s)
            except FaceEngineUnavailable as exc:  # a setup problem of this host, not of the request
                raise UploadError(503, f"verification is not available here: {exc}") from exc
            best_time = getattr(result, "best_frame_time_s", None)
            frame = best_frame_jpeg(path, best_time, s) if with_frame and best_time is not None else None
            return result, frame

    def _read(self, upload: UploadFile | None, url: str, kind: str, cap: int) -> bytes:
        has_file = upload is not None and bool(upload.filename)
        if has_file and url.strip():
            raise UploadError(422, f"give the {kind} as a file or a URL, not both")
        if has_file:
            assert upload is not None
            data = upload.file.read(cap + 1)
            if len(data) > cap:
                raise UploadError(413, f"{kind} is over the cap of {cap} bytes")
            return data
        if url.strip():
            return _fetch_url(url.strip(), kind, s=self.settings)
        raise UploadError(422, f"a {kind} is needed (a file or a URL)")


def _fetch_url(url: str, kind: str, s: Settings) -> bytes:
    """Fetch a photo or video by http(s) URL with the media fetcher's guards (address block, redirects re-checked,
    size caps, timeouts) into a throw-away bucket: a person's photo is not kept in the media store."""
    from adpipeline.media.fetch import FetchRequest, fetch_all

    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise UploadError(422, f"{kind} URL must be http:// or https://")
    guarded = s.model_copy(update={"allow_local_paths": False, "refresh_media": True})
    with tempfile.TemporaryDirectory(prefix="adp-verify-fetch-") as tmp:
        bucket = Bucket(tmp)
        (result,) = fetch_all([FetchRequest("verify", url, "image" if kind == "image" else "video")], guarded, bucket)
        if not result.ok or result.blob_key is None:
            status = 413 if result.status == "too_large" else 422
            raise UploadError(status, f"{kind} URL: {result.status}: {result.reason}")
        return bucket.get_bytes(result.blob_key)


def _body_cap(s: Settings) -> int:
    # One photo and one video plus the multipart framing.
    return s.max_image_bytes + min(s.max_video_bytes, s.insights_max_upload_bytes) + 64 * 1024


def _caps(s: Settings) -> dict[str, int]:
    return {
        "image_mb": s.max_image_bytes // 2**20,
        "video_mb": min(s.max_video_bytes, s.insights_max_upload_bytes) // 2**20,
    }


def _image_headers(private: bool = False) -> dict[str, str]:
    cache = "private, max-age=300" if private else "private, max-age=86400, immutable"
    return {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _signed_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"
