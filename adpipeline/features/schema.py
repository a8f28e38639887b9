"""The creative feature schema, declared once as data.

Every feature is one :class:`Feature` in :data:`FEATURES`: its id, the question a model answers, its type, the
modality it applies to, the providers that can answer it and the warehouse columns it fills. From that one list:

- :data:`ImageFeatures` / :data:`VideoFeatures`: the Pydantic response models for LLM providers (Gemini's
  ``response_schema``, LangChain's ``with_structured_output``). Every field is required and nullable, so a model
  must answer each one (``null`` or ``[]`` when the creative does not show it); extra keys are rejected.
- :func:`render_prompt`: the prompt text.
- :data:`PROMPT_VERSION`: a hash of the feature content and the prompt template; changing a question, a choice or a
  type changes it, which invalidates the features cache.
- :func:`to_row`: a validated response (or the offline extractor's values) as an ``ImageFeatureRow`` /
  ``VideoFeatureRow``. The row classes in :mod:`adpipeline.tables` are checked against this list by a test.

Adding a feature is adding one ``Feature(...)`` here and its column(s) to the row class.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, create_model

from adpipeline import geometry, tables

FeatureType = Literal["string", "boolean", "integer", "number", "enum", "string_list", "enum_list", "object_list"]
Modality = Literal["image", "video"]
Reduce = Literal["list", "max", "first"]

GEMINI = "gemini"
LANGCHAIN = "langchain"
OFFLINE = "offline"
METADATA = "metadata"
"""Not asked of any model: the features task copies it from media metadata (``video_metadata``)."""

LLM: frozenset[str] = frozenset({GEMINI, LANGCHAIN})
ALL: frozenset[str] = LLM | {OFFLINE}
PROVIDERS: frozenset[str] = ALL | {METADATA}

META_COLUMNS: tuple[str, ...] = (
    "creative_id",
    "provider",
    "model",
    "prompt_version",
    "status",
    "reason",
    "raw_response",
)
"""Row columns that describe the extraction rather than the creative."""

STATUSES: tuple[str, ...] = (
    "ok",
    "corrupt",
    "failed",
    "invalid_response",
    "blocked",
    "rate_limited",
    "skipped_budget",
    "submitted",
)

COLOR_NAMES: tuple[str, ...] = (
    "black",
    "gray",
    "white",
    "red",
    "orange",
    "yellow",
    "green",
    "teal",
    "blue",
    "navy",
    "purple",
    "pink",
    "brown",
    "beige",
)
PROMOTION_KINDS: tuple[str, ...] = (
    "percent_off",
    "amount_off",
    "price",
    "free_shipping",
    "bogo",
    "limited_time",
    "sale",
    "coupon_code",
    "free_trial",
    "free_gift",
    "other",
)
CTA_KINDS: tuple[str, ...] = (
    "shop",
    "learn",
    "sign_up",
    "download",
    "book",
    "contact",
    "watch",
    "play",
    "apply",
    "get_offer",
    "visit",
    "donate",
    "other",
)
PRODUCT_CATEGORIES: tuple[str, ...] = (
    "apparel_fashion",
    "beauty_personal_care",
    "food_beverage",
    "automotive",
    "electronics_tech",
    "finance_insurance",
    "travel_hospitality",
    "entertainment_media",
    "retail_ecommerce",
    "health_pharma",
    "home_garden",
    "gaming",
    "telecom",
    "education",
    "sports_fitness",
    "software_b2b",
    "other",
)
VISUAL_STYLES: tuple[str, ...] = (
    "photo",
    "illustration",
    "3d_render",
    "ugc",
    "graphic_design",
    "animation",
    "screenshot",
    "mixed",
)
SETTINGS: tuple[str, ...] = (
    "studio",
    "indoor",
    "outdoor",
    "urban",
    "nature",
    "home",
    "office",
    "store",
    "vehicle_interior",
    "abstract_background",
)
ORIENTATIONS: tuple[str, ...] = geometry.ORIENTATIONS
TEXT_POSITIONS: tuple[str, ...] = ("top", "middle", "bottom", "spread")


@dataclass(frozen=True)
class SubField:
    """One field of an ``object_list`` item, and how its values across items reduce into one row column."""

    id: str
    description: str
    type: Literal["string", "number", "enum"]
    column: str
    reduce: Reduce
    choices: tuple[str, ...] = ()
    nullable: bool = False


@dataclass(frozen=True)
class Feature:
    """One feature: asked once, typed once, stored once.

    ``columns`` defaults to ``(id,)`` for scalar and list features; an ``object_list`` fills the columns of its
    ``item_fields``. ``stored=False`` marks a feature that is asked but not kept in the row (``note`` says why).
    """

    id: str
    question: str
    type: FeatureType
    modality: Literal["image", "video", "both"]
    answered_by: frozenset[str]
    choices: tuple[str, ...] = ()
    item_fields: tuple[SubField, ...] = ()
    stored: bool = True
    note: str = ""
    video_question: str | None = field(default=None, compare=False)

    def applies_to(self, modality: Modality) -> bool:
        return self.modality in (modality, "both")

    def question_for(self, modality: Modality) -> str:
        return self.video_question if modality == "video" and self.video_question else self.question

    @property
    def columns(self) -> tuple[str, ...]:
        if not self.stored:
            return ()
        if self.type == "object_list":
            return tuple(dict.fromkeys(sub.column for sub in self.item_fields))
        return (self.id,)


FEATURES: tuple[Feature, ...] = (
    # --- what is advertised ------------------------------------------------------------------------
    Feature(
        "product_type",
        "What product or service is advertised, in a few words (e.g. 'running shoes', "
        "'car insurance')? Null if none is recognisable.",
        "string",
        "both",
        LLM,
    ),
    Feature(
        "product_category",
        "Which category does the advertised product or service belong to?",
        "enum",
        "both",
        LLM,
        choices=PRODUCT_CATEGORIES,
    ),
    Feature("brands", "Brand names shown as text or as logos, each once, as written.", "string_list", "both", LLM),
    Feature("has_logo", "Is a brand logo shown?", "boolean", "both", LLM),
    Feature(
        "automotive_brand",
        "If a car, motorbike or other vehicle is advertised, its manufacturer (e.g. 'Toyota'); otherwise null.",
        "string",
        "both",
        LLM,
    ),
    # --- text, offers and calls to action -------------------------------------------------------------
    Feature(
        "has_text",
        "Is any readable text shown (headlines, prices, captions, brand names)?",
        "boolean",
        "both",
        ALL,
        video_question="Is any readable text shown on screen at any time?",
    ),
    Feature(
        "text",
        "All readable text, transcribed as written; lines separated by newlines. Null if none.",
        "string",
        "both",
        ALL,
        video_question="All distinct on-screen text, transcribed as written; lines separated by newlines.",
    ),
    Feature(
        "language",
        "Language of the text (ISO 639-1 code such as 'en', 'de'); null if there is no text.",
        "string",
        "both",
        ALL,
        video_question="Main language of the on-screen text or speech (ISO 639-1 code); null if none.",
    ),
    Feature(
        "promotions",
        "Every promotion offered: discounts, prices, free shipping, buy-one-get-one, time "
        "limits, codes, free trials or gifts. Empty if none.",
        "object_list",
        "both",
        ALL,
        item_fields=(
            SubField("kind", "Kind of promotion.", "enum", "promotions", "list", choices=PROMOTION_KINDS),
            SubField(
                "discount_percent",
                "Discount in percent (30 for '-30%'), else null.",
                "number",
                "discount_percent",
                "max",
                nullable=True,
            ),
            SubField(
                "discount_amount",
                "Discount as an amount of money (10 for '$10 off'), else null.",
                "number",
                "discount_amount",
                "max",
                nullable=True,
            ),
            SubField("text", "The promotion as written.", "string", "promotion_texts", "list"),
        ),
    ),
    Feature("call_to_action", "The call to action as written (e.g. 'Shop now'); null if none.", "string", "both", ALL),
    Feature(
        "cta_kind",
        "What the call to action asks the viewer to do; null if there is none.",
        "enum",
        "both",
        ALL,
        choices=CTA_KINDS,
    ),
    # --- look -----------------------------------------------------------------------------------------
    Feature("visual_style", "Visual style of the creative.", "enum", "both", LLM, choices=VISUAL_STYLES),
    Feature(
        "people_count",
        "How many people are visible (0 if none)?",
        "integer",
        "both",
        LLM,
        video_question="The largest number of people visible at the same time (0 if none).",
    ),
    Feature(
        "setting",
        "Where the scene takes place.",
        "enum",
        "both",
        LLM,
        choices=SETTINGS,
        video_question="Where most of the video takes place.",
    ),
    Feature(
        "dominant_colors",
        "Up to five dominant colours, most prominent first.",
        "enum_list",
        "both",
        ALL,
        choices=COLOR_NAMES,
    ),
    # --- measured offline only (not asked of a model) ------------------------------------------------
    Feature(
        "dominant_colors_hex",
        "Hex RGB of each dominant colour, in the order of dominant_colors.",
        "string_list",
        "both",
        frozenset({OFFLINE}),
    ),
    Feature("brightness", "Mean luminance, 0 (black) to 1 (white).", "number", "both", frozenset({OFFLINE})),
    Feature(
        "colorfulness",
        "Hasler-Suesstrunk colourfulness (0 grey; above 80 very colourful).",
        "number",
        "both",
        frozenset({OFFLINE}),
    ),
    Feature(
        "orientation",
        "Landscape, portrait or square (within 5%).",
        "enum",
        "both",
        frozenset({OFFLINE}),
        choices=ORIENTATIONS,
    ),
    Feature("ocr_confidence", "Mean OCR confidence of the text read, 0-1.", "number", "both", frozenset({OFFLINE})),
    Feature(
        "face_count",
        "Faces detected by the face backend (null when no face counter is configured).",
        "integer",
        "image",
        frozenset({OFFLINE}),
    ),
    Feature(
        "text_area_share",
        "Share of the image area covered by detected text boxes, 0-1.",
        "number",
        "image",
        frozenset({OFFLINE}),
    ),
    Feature(
        "text_position",
        "Where the text mass sits vertically.",
        "enum",
        "image",
        frozenset({OFFLINE}),
        choices=TEXT_POSITIONS,
    ),
    # --- video only -------------------------------------------------------------------------------------
    Feature(
        "first_3s_summary", "What happens in the first 3 seconds, in one or two sentences?", "string", "video", LLM
    ),
    Feature(
        "brand_first_seen_s",
        "Seconds from the start when a brand name or logo first appears; null if never.",
        "number",
        "video",
        LLM,
    ),
    Feature("product_on_screen", "Is the advertised product shown on screen?", "boolean", "video", LLM),
    Feature("voice_over", "Is there a voice-over or someone speaking?", "boolean", "video", LLM),
    Feature("music", "Is there music?", "boolean", "video", LLM),
    Feature(
        "on_screen_text",
        "On-screen text over time: each distinct text with the second it first appears, in order.",
        "object_list",
        "video",
        ALL,
        item_fields=(
            SubField("time_s", "Seconds from the start.", "number", "on_screen_text_times_s", "list"),
            SubField("text", "The text as written.", "string", "on_screen_text", "list"),
        ),
    ),
    Feature("scene_count", "Number of scenes (shots separated by cuts).", "integer", "video", ALL),
    Feature("has_audio", "Does the file carry an audio stream?", "boolean", "video", frozenset({METADATA})),
)

FEATURES_BY_ID: dict[str, Feature] = {f.id: f for f in FEATURES}

_PROMPT_TEMPLATE = """\
You analyse one advertising {modality} and fill every field of the JSON response schema.

Rules:
- Answer only from what the {modality} shows{audio}. Never guess: use null (or an empty list) when it does not show it.
- Transcribe text exactly as written; do not translate.
- Where a field lists choices, use one of them exactly.

Fields:
{fields}
"""


def features_for(modality: Modality, provider: str | None = None) -> tuple[Feature, ...]:
    """The features of one modality, optionally only those ``provider`` answers (declaration order)."""
    return tuple(f for f in FEATURES if f.applies_to(modality) and (provider is None or provider in f.answered_by))


def row_model(modality: Modality) -> type[tables.Row]:
    return tables.ImageFeatureRow if modality == "image" else tables.VideoFeatureRow


# --- response models --------------------------------------------------------------------------------
def _choices(values: tuple[str, ...]) -> Any:
    return Literal[values]


def _scalar_annotation(type_: str, choices: tuple[str, ...]) -> Any:
    scalars: dict[str, Any] = {"string": str, "boolean": bool, "integer": int, "number": float}
    return _choices(choices) if type_ == "enum" else scalars[type_]


def _drop_additional_properties(schema: dict[str, Any]) -> None:
    # Validation stays strict (extra="forbid"), but the Gemini Developer API rejects additionalProperties.
    schema.pop("additionalProperties", None)


_STRICT = ConfigDict(extra="forbid", json_schema_extra=_drop_additional_properties)


def _item_model(feature: Feature) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for sub in feature.item_fields:
        annotation = _scalar_annotation(sub.type, sub.choices)
        if sub.nullable:
            annotation = annotation | None
        fields[sub.id] = (annotation, Field(description=sub.description))
    name = "".join(part.title() for part in feature.id.split("_")) + "Item"
    return create_model(name, __config__=_STRICT, **fields)


def _annotation(feature: Feature) -> Any:
    if feature.type == "object_list":
        return list[_item_model(feature)]  # type: ignore[misc]
    if feature.type == "string_list":
        return list[str]
    if feature.type == "enum_list":
        return list[_choices(feature.choices)]  # type: ignore[misc]
    return _scalar_annotation(feature.type, feature.choices) | None


def build_response_model(modality: Modality, features: Iterable[Feature] = FEATURES) -> type[BaseModel]:
    """The LLM response model of one modality: one required, nullable field per feature an LLM answers.

    Only types Gemini's ``response_schema`` accepts are used: strings, enums, booleans, integers, numbers,
    arrays and objects of those, nullable scalars.
    """
    fields: dict[str, Any] = {}
    for feature in features:
        if feature.applies_to(modality) and feature.answered_by & LLM:
            fields[feature.id] = (_annotation(feature), Field(description=feature.question_for(modality)))
    name = "ImageFeatures" if modality == "image" else "VideoFeatures"
    model = create_model(name, __config__=_STRICT, **fields)
    model.__doc__ = f"Structured features of one advertising {modality}, as an LLM answers them."
    return model


ImageFeatures: type[BaseModel] = build_response_model("image")
VideoFeatures: type[BaseModel] = build_response_model("video")


def response_model(modality: Modality) -> type[BaseModel]:
    return ImageFeatures if modality == "image" else VideoFeatures


# --- prompt and version -----------------------------------------------------------------------------
def _type_hint(feature: Feature) -> str:
    if feature.type == "enum":
        return "one of: " + ", ".join(feature.choices) + "; or null"
    if feature.type == "enum_list":
        return "list of: " + ", ".join(feature.choices)
    if feature.type == "object_list":
        parts = []
        for sub in feature.item_fields:
            kind = "one of: " + ", ".join(sub.choices) if sub.type == "enum" else sub.type
            parts.append(f"{sub.id} ({kind}{' or null' if sub.nullable else ''})")
        return "list of objects with " + "; ".join(parts)
    if feature.type == "string_list":
        return "list of strings"
    return f"{feature.type} or null"


def render_prompt(modality: Modality, features: Iterable[Feature] = FEATURES) -> str:
    """The instruction text for an LLM provider; the fields match :func:`build_response_model` exactly."""
    lines = [
        f"- {f.id} ({_type_hint(f)}): {f.question_for(modality)}"
        for f in features
        if f.applies_to(modality) and f.answered_by & LLM
    ]
    audio = " and lets you hear" if modality == "video" else ""
    return _PROMPT_TEMPLATE.format(modality=modality, audio=audio, fields="\n".join(lines))


def prompt_version(features: Sequence[Feature] = FEATURES) -> str:
    """A short hash of everything that shapes an answer: the features (as data) and the prompt template."""

    def canonical(value: Any) -> Any:
        if isinstance(value, frozenset | set):
            return sorted(value)
        if isinstance(value, dict):
            return {k: canonical(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [canonical(v) for v in value]
        return value

    payload = {"template": _PROMPT_TEMPLATE, "features": [canonical(asdict(f)) for f in features]}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"fs-{digest[:12]}"


PROMPT_VERSION: str = prompt_version()


# --- values to rows ---------------------------------------------------------------------------------
def _reduce(values: list[Any], how: Reduce) -> Any:
    present = [v for v in values if v is not None]
    if how == "list":
        return present
    if not present:
        return None
    return max(present) if how == "max" else present[0]


def flatten(feature: Feature, value: Any) -> dict[str, Any]:
    """One feature's answer as ``{column: value}`` (empty when the feature is not stored)."""
    if not feature.stored:
        return {}
    if feature.type != "object_list":
        if feature.type in ("string_list", "enum_list") and value is None:
            value = []
        return {feature.id: value}
    items = [item.model_dump() if isinstance(item, BaseModel) else dict(item) for item in value or ()]
    out: dict[str, Any] = {}
    for sub in feature.item_fields:
        reduced = _reduce([item.get(sub.id) for item in items], sub.reduce)
        if sub.reduce == "list":
            # Columns shared by several sub-fields are not allowed; a list keeps item order, kinds de-duplicated.
            reduced = list(dict.fromkeys(reduced)) if sub.type == "enum" else reduced
        out[sub.column] = reduced
    return out


@overload
def to_row(
    modality: Literal["image"],
    values: BaseModel | Mapping[str, Any],
    *,
    creative_id: str,
    provider: str,
    model: str,
    prompt_version: str = ...,
    status: str = ...,
    reason: str | None = ...,
    raw_response: str | None = ...,
) -> tables.ImageFeatureRow: ...


@overload
def to_row(
    modality: Literal["video"],
    values: BaseModel | Mapping[str, Any],
    *,
    creative_id: str,
    provider: str,
    model: str,
    prompt_version: str = ...,
    status: str = ...,
    reason: str | None = ...,
    raw_response: str | None = ...,
) -> tables.VideoFeatureRow: ...


def to_row(
    modality: Modality,
    values: BaseModel | Mapping[str, Any],
    *,
    creative_id: str,
    provider: str,
    model: str,
    prompt_version: str = PROMPT_VERSION,
    status: str = "ok",
    reason: str | None = None,
    raw_response: str | None = None,
) -> tables.ImageFeatureRow | tables.VideoFeatureRow:
    """Build the warehouse row from feature values keyed by feature id (a response model or a plain mapping).

    Values for features the provider does not answer are rejected, so a provider cannot fill a column it cannot
    know; features left out stay null (or empty lists).
    """
    data = values.model_dump() if isinstance(values, BaseModel) else dict(values)
    columns: dict[str, Any] = {}
    for feature_id, value in data.items():
        feature = FEATURES_BY_ID.get(feature_id)
        if feature is None or not feature.applies_to(modality):
            raise ValueError(f"{feature_id!r} is not a {modality} feature")
        if provider not in feature.answered_by and METADATA not in feature.answered_by:
            raise ValueError(f"provider {provider!r} does not answer {feature_id!r}")
        columns.update(flatten(feature, value))
    meta = {
        "creative_id": creative_id,
        "provider": provider,
        "model": model,
        "prompt_version": prompt_version,
        "status": status,
        "reason": reason,
        "raw_response": raw_response,
    }
    return row_model(modality).model_validate({**meta, **columns})  # type: ignore[return-value]


@overload
def status_row(
    modality: Literal["image"],
    *,
    creative_id: str,
    provider: str,
    model: str,
    status: str,
    reason: str,
    prompt_version: str = ...,
    raw_response: str | None = ...,
) -> tables.ImageFeatureRow: ...


@overload
def status_row(
    modality: Literal["video"],
    *,
    creative_id: str,
    provider: str,
    model: str,
    status: str,
    reason: str,
    prompt_version: str = ...,
    raw_response: str | None = ...,
) -> tables.VideoFeatureRow: ...


def status_row(
    modality: Modality,
    *,
    creative_id: str,
    provider: str,
    model: str,
    status: str,
    reason: str,
    prompt_version: str = PROMPT_VERSION,
    raw_response: str | None = None,
) -> tables.ImageFeatureRow | tables.VideoFeatureRow:
    """A row that records a per-item failure; every feature column stays null/empty."""
    return to_row(
        modality,
        {},
        creative_id=creative_id,
        provider=provider,
        model=model,
        prompt_version=prompt_version,
        status=status,
        reason=reason,
        raw_response=raw_response,
    )
