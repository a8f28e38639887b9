"""The feature schema as data: response models, prompt, prompt version, and the row classes kept in step."""

from __future__ import annotations

import dataclasses
import json
import types
import typing

import pytest
from pydantic import BaseModel, ValidationError

from adpipeline import tables
from adpipeline.features import schema
from adpipeline.features.schema import FEATURES, LLM, META_COLUMNS, OFFLINE, PROVIDERS
from tests.locked import locked_import

MODALITIES: tuple[schema.Modality, ...] = ("image", "video")
_SCALAR_COLUMN_TYPES = {"string": str, "enum": str, "boolean": bool, "integer": int, "number": float}


def _base(annotation: typing.Any) -> tuple[typing.Any, bool]:
    """(inner type, is_list) of a row annotation, Optional removed."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def _expected_column_types(feature: schema.Feature) -> dict[str, tuple[typing.Any, bool]]:
    if feature.type in ("string_list", "enum_list"):
        return {feature.id: (str, True)}
    if feature.type == "object_list":
        out = {}
        for sub in feature.item_fields:
            scalar = _SCALAR_COLUMN_TYPES[sub.type]
            out[sub.column] = (scalar, True) if sub.reduce == "list" else (scalar, False)
        return out
    return {feature.id: (_SCALAR_COLUMN_TYPES[feature.type], False)}


def test_features_are_well_formed() -> None:
    ids = [f.id for f in FEATURES]
    assert len(ids) == len(set(ids))
    for feature in FEATURES:
        assert feature.answered_by and feature.answered_by <= PROVIDERS, feature.id
        assert feature.question.strip(), feature.id
        assert bool(feature.choices) == (feature.type in ("enum", "enum_list")), feature.id
        assert bool(feature.item_fields) == (feature.type == "object_list"), feature.id
        assert feature.stored or feature.note, f"{feature.id}: say why it is not stored"


@pytest.mark.parametrize("modality", MODALITIES)
def test_every_feature_maps_to_a_row_column_of_the_right_type(modality: schema.Modality) -> None:
    row = schema.row_model(modality)
    for feature in schema.features_for(modality):
        for column, (scalar, is_list) in _expected_column_types(feature).items():
            if not feature.stored:
                continue
            assert column in row.model_fields, f"{row.__name__} lacks {column} (feature {feature.id})"
            assert _base(row.model_fields[column].annotation) == (scalar, is_list), f"{row.__name__}.{column}"


@pytest.mark.parametrize("modality", MODALITIES)
def test_every_row_column_comes_from_exactly_one_feature(modality: schema.Modality) -> None:
    row = schema.row_model(modality)
    owners: dict[str, list[str]] = {}
    for feature in schema.features_for(modality):
        for column in feature.columns:
            owners.setdefault(column, []).append(feature.id)
    for column in row.model_fields:
        if column in META_COLUMNS:
            continue
        assert len(owners.get(column, [])) == 1, f"{row.__name__}.{column} is owned by {owners.get(column)}"


def test_row_classes_have_a_warehouse_schema() -> None:
    from adpipeline.warehouse.schema import columns

    for model in (tables.ImageFeatureRow, tables.VideoFeatureRow):
        assert {c.name for c in columns(model)} == set(model.model_fields)


@pytest.mark.parametrize("modality", MODALITIES)
def test_response_model_asks_every_llm_feature_and_nothing_else(modality: schema.Modality) -> None:
    model = schema.response_model(modality)
    expected = [f.id for f in schema.features_for(modality) if f.answered_by & LLM]
    assert list(model.model_fields) == expected
    assert all(field.is_required() for field in model.model_fields.values())
    prompt = schema.render_prompt(modality)
    for feature_id in expected:
        assert f"- {feature_id} (" in prompt
    for feature in schema.features_for(modality):
        if not feature.answered_by & LLM:
            assert f"- {feature.id} (" not in prompt


def _image_answer(**overrides: typing.Any) -> dict[str, typing.Any]:
    answer: dict[str, typing.Any] = {field: None for field in schema.ImageFeatures.model_fields}
    answer.update(brands=[], promotions=[], dominant_colors=[])
    answer.update(overrides)
    return answer


def test_response_model_validates_strictly_and_flattens_into_a_row() -> None:
    answer = _image_answer(
        product_type="sneakers",
        product_category="apparel_fashion",
        brands=["Acme"],
        has_text=True,
        text="SALE -30%\nExtra $10 off\nShop now",
        promotions=[
            {"kind": "percent_off", "discount_percent": 30, "discount_amount": None, "text": "-30%"},
            {"kind": "amount_off", "discount_percent": None, "discount_amount": 10, "text": "Extra $10 off"},
            {"kind": "percent_off", "discount_percent": 20, "discount_amount": None, "text": "20%"},
        ],
        call_to_action="Shop now",
        cta_kind="shop",
        people_count=2,
        dominant_colors=["red", "white"],
    )
    parsed = schema.ImageFeatures.model_validate_json(json.dumps(answer))
    row = schema.to_row("image", parsed, creative_id="c1", provider="gemini", model="gemini-2.5-flash")
    assert isinstance(row, tables.ImageFeatureRow)
    assert row.promotions == ["percent_off", "amount_off"]
    assert row.discount_percent == 30 and row.discount_amount == 10
    assert row.promotion_texts == ["-30%", "Extra $10 off", "20%"]
    assert (row.call_to_action, row.cta_kind, row.people_count) == ("Shop now", "shop", 2)
    assert row.prompt_version == schema.PROMPT_VERSION
    assert row.brightness is None and row.face_count is None  # measured offline only

    with pytest.raises(ValidationError):  # a field left out
        schema.ImageFeatures.model_validate({k: v for k, v in answer.items() if k != "setting"})
    with pytest.raises(ValidationError):  # an unknown key
        schema.ImageFeatures.model_validate({**answer, "mood": "happy"})
    with pytest.raises(ValidationError):  # a choice outside the list
        schema.ImageFeatures.model_validate({**answer, "cta_kind": "buy_buy_buy"})


def test_video_answer_keeps_on_screen_text_over_time() -> None:
    answer: dict[str, typing.Any] = {field: None for field in schema.VideoFeatures.model_fields}
    answer.update(
        brands=[],
        promotions=[],
        dominant_colors=[],
        on_screen_text=[
            {"time_s": 0.5, "text": "New season"},
            {"time_s": 4.0, "text": "Shop now"},
        ],
    )
    parsed = schema.VideoFeatures.model_validate(answer)
    row = schema.to_row(
        "video", {**parsed.model_dump(), "has_audio": True}, creative_id="v", provider="gemini", model="m"
    )
    assert row.on_screen_text == ["New season", "Shop now"]
    assert row.on_screen_text_times_s == [0.5, 4.0]
    assert row.has_audio is True  # copied from media metadata for every provider


def test_a_provider_cannot_fill_a_feature_it_does_not_answer() -> None:
    with pytest.raises(ValueError, match="does not answer"):
        schema.to_row("image", {"product_type": "shoes"}, creative_id="c", provider=OFFLINE, model="m")
    with pytest.raises(ValueError, match="not a image feature"):
        schema.to_row("image", {"scene_count": 3}, creative_id="c", provider=OFFLINE, model="m")


def test_prompt_version_follows_the_content() -> None:
    assert schema.PROMPT_VERSION == schema.prompt_version(list(FEATURES))
    index = next(i for i, f in enumerate(FEATURES) if f.id == "call_to_action")
    changed_question = list(FEATURES)
    changed_question[index] = dataclasses.replace(FEATURES[index], question="Which button text is shown?")
    changed_choices = [
        dataclasses.replace(f, choices=(*f.choices, "meme")) if f.id == "visual_style" else f for f in FEATURES
    ]
    versions = {
        schema.PROMPT_VERSION,
        schema.prompt_version(changed_question),
        schema.prompt_version(changed_choices),
        schema.prompt_version(FEATURES[:-1]),
    }
    assert len(versions) == 4
    assert schema.render_prompt("image", changed_question) != schema.render_prompt("image")


def test_response_schema_is_accepted_by_google_genai() -> None:
    genai = locked_import("google.genai")
    from google.genai import _transformers

    client = genai.Client(api_key="test-key")  # no request is made
    for model in (schema.ImageFeatures, schema.VideoFeatures):
        assert "additionalProperties" not in json.dumps(model.model_json_schema())
        converted = _transformers.t_schema(client._api_client, model)
        assert set(converted.properties or {}) == set(model.model_fields)
        assert converted.properties["dominant_colors"].items.enum == list(schema.COLOR_NAMES)


def test_response_models_are_pydantic_models() -> None:
    assert issubclass(schema.ImageFeatures, BaseModel) and schema.ImageFeatures.__name__ == "ImageFeatures"
    assert issubclass(schema.VideoFeatures, BaseModel) and schema.VideoFeatures.__name__ == "VideoFeatures"
