"""A local Gemini Developer API speaking the real wire format, so the real ``google-genai`` SDK runs against it.

::

    with GeminiStub() as stub:
        client = stub.client()  # genai.Client(api_key="test", http_options=HttpOptions(base_url=stub.url, ...))
        stub.fail("429", retry_after=1, endpoint="generate")
        client.models.generate_content(...)  # raises google.genai.errors.ClientError (code 429)

Endpoints (``v1`` or ``v1beta``; any ``x-goog-api-key``; no streaming) and the names faults and the request log use
for them:

* ``generate``: ``POST models/{m}:generateContent``; ``count``: ``POST models/{m}:countTokens``;
* ``upload``: ``POST /upload/v1beta/files`` resumable start (replies ``x-goog-upload-url``); the chunk POSTs to that
  URL are logged as ``upload_chunk`` and never faulted; the finalising chunk returns ``{"file": File}``;
* ``files``: ``GET``/``DELETE files/{id}``; a file reports ``PROCESSING`` until it has been fetched
  ``file_active_after_gets`` times (0: ACTIVE at once, None: never), and generating with a file that is not ACTIVE
  fails with 400, as the real API does; unknown or deleted files give 403;
* ``batch``: ``POST models/{m}:batchGenerateContent`` (inlined requests only), ``GET``/``DELETE batches/{id}``,
  ``POST batches/{id}:cancel``. A job is PENDING when created, RUNNING for its first ``batch_running_polls`` GETs,
  then ``batch_final_state``. Answers are computed at creation, one per request in order, each consuming a fault
  queued for the explicit endpoint ``batch_item``: "429"/"500"/"503" become that request's ``error``, content faults
  shape its response.

Answers: the canned :meth:`answer`, else a minimal instance of ``generationConfig.responseJsonSchema`` or
``responseSchema`` (google-genai 2.34 sends ``responseSchema``, Gemini ``Schema`` dialect, for a pydantic
``response_schema``), else ``{}`` for ``responseMimeType: application/json``, else plain text.

Usage metadata: prompt tokens per modality (see ``_tokens``; video/audio last ``media_seconds``, default 5 s),
output tokens ``ceil(len(text) / 4)``, ``thoughtsTokenCount`` = ``thoughts_tokens`` (default 0, added to the total;
at most ``generationConfig.thinkingConfig.thinkingBudget`` when the request sets one),
``cachedContentTokenCount`` = ``cached_tokens`` when set.

Every usage sent is added to ``billed`` (the bill, in tokens). A 429 carries its delay the way the real service does:
``error.details[]`` holds a ``google.rpc.RetryInfo`` with ``retryDelay`` ("7s"), and there is no ``Retry-After``
header.

Content faults (``generate`` and ``batch_item``): ``malformed`` (text that is not JSON), ``wrong_schema`` (JSON that
breaks the schema), ``blocked`` (``promptFeedback.blockReason: SAFETY``, no candidates), ``blocked_candidate`` (one
candidate, ``finishReason: SAFETY``, no content), ``empty`` (no candidates). Plus the transport faults of ``_server``.
``latency_s`` delays every generateContent.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from google import genai
from google.genai import types

from adpipeline.testing._schema_instance import proto_field
from adpipeline.testing._server import HTTP_FAULTS, Fault, Reply, Request, Route, StubError, StubServer, media_key
from adpipeline.testing._tokens import (
    GEMINI_AUDIO_TOKENS_PER_S,
    GEMINI_IMAGE_TOKENS,
    GEMINI_VIDEO_TOKENS_PER_S,
    decode_base64,
    gemini_image_tokens,
    text_tokens,
)

_V = r"/(?:v1|v1beta)"
_UPLOAD_CHUNK = rf"/upload{_V}/files\?upload_id=(?P<upload_id>[^&]+).*"
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_MODALITIES = ("TEXT", "IMAGE", "VIDEO", "AUDIO", "DOCUMENT")
_SAFETY_BLOCK = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]
_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_BATCH_OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
_LIVE_BATCH_STATES = ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")


@dataclass
class _File:
    resource: dict[str, Any]  # the File JSON (camelCase), state excluded
    data: bytes
    gets: int = 0


@dataclass
class _Upload:
    resource: dict[str, Any]
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _Batch:
    name: str
    model: str
    display_name: str
    create_time: str
    items: list[dict[str, Any]]  # inlined responses, in request order
    state: str = "BATCH_STATE_PENDING"
    gets: int = 0


class GeminiStub(StubServer):
    """The Gemini Developer API on 127.0.0.1 (see the module docstring)."""

    fault_kinds = StubServer.fault_kinds | {"malformed", "wrong_schema", "blocked", "blocked_candidate", "empty"}
    content_endpoints = frozenset({"generate", "batch_item"})
    explicit_endpoints = frozenset({"batch_item"})

    def __init__(self, *, port: int = 0, latency_s: float = 0.0) -> None:
        super().__init__(port=port, latency_s=latency_s)
        self.thoughts_tokens = 0
        self.cached_tokens = 0
        self.media_seconds = 5.0
        self.model_version: str | None = None  # reported modelVersion; default: the requested model
        self.file_active_after_gets: int | None = 1
        self.batch_running_polls = 1
        self.batch_final_state = "BATCH_STATE_SUCCEEDED"
        self._files: dict[str, _File] = {}
        self._uploads: dict[str, _Upload] = {}
        self._batches: dict[str, _Batch] = {}
        self._uploaded: list[dict[str, Any]] = []
        self._deleted: list[str] = []
        self.routes = [
            Route("POST", rf"{_V}/models/(?P<model>[^/:]+):generateContent", "generate", self._generate),
            Route("POST", rf"{_V}/models/(?P<model>[^/:]+):countTokens", "count", self._count),
            Route("POST", rf"{_V}/models/(?P<model>[^/:]+):batchGenerateContent", "batch", self._batch_create),
            Route("POST", _UPLOAD_CHUNK, "upload_chunk", self._upload_chunk, faultable=False),
            Route("POST", rf"/upload{_V}/files", "upload", self._upload_start),
            Route("GET", rf"{_V}/files/(?P<file_id>[^/:]+)", "files", self._file_get),
            Route("DELETE", rf"{_V}/files/(?P<file_id>[^/:]+)", "files", self._file_delete),
            Route("GET", rf"{_V}/batches/(?P<batch_id>[^/:]+)", "batch", self._batch_get),
            Route("POST", rf"{_V}/batches/(?P<batch_id>[^/:]+):cancel", "batch", self._batch_cancel),
            Route("DELETE", rf"{_V}/batches/(?P<batch_id>[^/:]+)", "batch", self._batch_delete),
        ]

    def client(self, api_version: str = "v1beta") -> genai.Client:
        """A real SDK client pointed at this stub (the SDK does not retry unless given ``retry_options``)."""
        return genai.Client(api_key="test", http_options=types.HttpOptions(base_url=self.url, api_version=api_version))

    @property
    def uploaded_files(self) -> list[dict[str, Any]]:
        """The File resources created so far, as returned by the finalising upload."""
        with self._lock:
            return list(self._uploaded)

    @property
    def deleted_files(self) -> list[str]:
        """Names (``files/<id>``) of the files deleted so far."""
        with self._lock:
            return list(self._deleted)

    def _retry_headers(self, retry_after: float) -> dict[str, str]:
        return {}  # like the real service: the delay is only in the body's google.rpc.RetryInfo

    def _error_body(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
        if retry_after is not None:
            retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}
            error["details"] = [retry_info]
        return {"error": error}

    # -- generateContent / countTokens -----------------------------------------------------------------------------
    def _generate(self, request: Request, params: dict[str, str], fault: Fault | None) -> Reply:
        time.sleep(self.latency_s)
        return Reply(body=self._generate_response(params["model"], request.json(), fault))

    def _count(self, request: Request, params: dict[str, str], _fault: Fault | None) -> Reply:
        body = request.json()
        prompt = self._prompt_tokens(proto_field(body, "generateContentRequest") or body)
        return Reply(body={"totalTokens": sum(prompt.values()), "promptTokensDetails": _details(prompt)})

    def _generate_response(self, model: str, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        response = self._answer(model, body, fault)
        self._bill(response["usageMetadata"], media_key=self._media_key(body), clean=fault is None)
        return response

    def _media_key(self, body: dict[str, Any]) -> str:
        for content in body.get("contents", []):
            for part in content.get("parts", []):
                if inline := proto_field(part, "inlineData"):
                    return media_key(decode_base64(inline.get("data", "")))
                if file_data := proto_field(part, "fileData"):
                    with contextlib.suppress(StubError):
                        return media_key(self._file_for_uri(proto_field(file_data, "fileUri", "")).data)
        return ""

    def _answer(self, model: str, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        prompt = self._prompt_tokens(body)
        config = proto_field(body, "generationConfig", {})
        thinking = proto_field(config, "thinkingConfig") or {}
        budget = proto_field(thinking, "thinkingBudget")
        thoughts = self.thoughts_tokens if budget is None or budget < 0 else min(self.thoughts_tokens, int(budget))
        envelope = {"modelVersion": self.model_version or model, "responseId": self._next_id("stub-response-")}
        kind = fault.kind if fault is not None else None
        if kind == "blocked":
            feedback = {"blockReason": "SAFETY", "safetyRatings": _SAFETY_BLOCK}
            return {"promptFeedback": feedback, "usageMetadata": self._usage(prompt, 0, thoughts), **envelope}
        if kind == "blocked_candidate":
            candidate = {"finishReason": "SAFETY", "index": 0, "safetyRatings": _SAFETY_BLOCK}
            return {"candidates": [candidate], "usageMetadata": self._usage(prompt, 0, thoughts), **envelope}
        if kind == "empty":
            return {"usageMetadata": self._usage(prompt, 0, thoughts), **envelope}
        schema = proto_field(config, "responseJsonSchema") or proto_field(config, "responseSchema")
        json_mode = proto_field(config, "responseMimeType") == "application/json"
        text = self._answer_text(model, schema, json_mode, fault)
        candidate = {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
        usage = self._usage(prompt, text_tokens(text), thoughts)
        return {"candidates": [candidate], "usageMetadata": usage, **envelope}

    def _usage(self, prompt: dict[str, int], output_tokens: int, thoughts: int) -> dict[str, Any]:
        prompt_total = sum(prompt.values())
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_total,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_total + output_tokens + thoughts,
            "thoughtsTokenCount": thoughts,
            "promptTokensDetails": _details(prompt),
        }
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = min(self.cached_tokens, prompt_total)
        return usage

    def _prompt_tokens(self, body: dict[str, Any]) -> dict[str, int]:
        """Prompt tokens per modality over ``contents`` and ``systemInstruction``."""
        contents = [*body.get("contents", []), proto_field(body, "systemInstruction") or {}]
        tokens = dict.fromkeys(_MODALITIES, 0)
        for part in (part for content in contents for part in content.get("parts", [])):
            modality, count = self._part_tokens(part)
            tokens[modality] += count
        return {modality: count for modality, count in tokens.items() if count or modality == "TEXT"}

    def _part_tokens(self, part: dict[str, Any]) -> tuple[str, int]:
        if inline := proto_field(part, "inlineData"):
            data = decode_base64(inline.get("data", ""))
            return self._media_tokens(proto_field(inline, "mimeType", ""), data)
        if file_data := proto_field(part, "fileData"):
            file = self._file_for_uri(proto_field(file_data, "fileUri", ""))
            return self._media_tokens(proto_field(file_data, "mimeType") or file.resource["mimeType"], file.data)
        return "TEXT", text_tokens(part.get("text", ""))

    def _media_tokens(self, mime_type: str, data: bytes) -> tuple[str, int]:
        if mime_type.startswith("image/"):
            return "IMAGE", gemini_image_tokens(data)
        if mime_type.startswith("video/"):
            return "VIDEO", round(GEMINI_VIDEO_TOKENS_PER_S * self.media_seconds)
        if mime_type.startswith("audio/"):
            return "AUDIO", round(GEMINI_AUDIO_TOKENS_PER_S * self.media_seconds)
        return "DOCUMENT", GEMINI_IMAGE_TOKENS  # e.g. a one-page PDF

    def _file_for_uri(self, uri: str) -> _File:
        file_id = uri.rsplit("/files/", 1)[-1]
        with self._lock:
            file = self._files.get(file_id)
            if file is None:
                raise StubError(403, f"You do not have permission to access the File {file_id} or it may not exist.")
            if self._file_state(file) != "ACTIVE":
                raise StubError(400, f"The File {file_id} is not in an ACTIVE state and usage is not allowed.")
            return file

    # -- Files API -------------------------------------------------------------------------------------------------
    def _upload_start(self, request: Request, _params: dict[str, str], _fault: Fault | None) -> Reply:
        wanted = request.json().get("file", {})
        file_id = (wanted.get("name") or "").removeprefix("files/") or self._next_id("stub-file-")
        now = _now()
        resource = {
            "name": f"files/{file_id}",
            "mimeType": request.headers.get("X-Goog-Upload-Header-Content-Type") or proto_field(wanted, "mimeType"),
            "createTime": now,
            "updateTime": now,
            "expirationTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() + 48 * 3600)),
            "uri": f"{self.url}/v1beta/files/{file_id}",
            "source": "UPLOADED",
        }
        if display_name := proto_field(wanted, "displayName"):
            resource["displayName"] = display_name
        upload_id = self._next_id("stub-upload-")
        with self._lock:
            self._uploads[upload_id] = _Upload(resource)
        upload_url = f"{self.url}/upload/v1beta/files?upload_id={upload_id}&upload_protocol=resumable"
        return Reply(body={}, headers={"x-goog-upload-url": upload_url, "x-goog-upload-status": "active"})

    def _upload_chunk(self, request: Request, params: dict[str, str], _fault: Fault | None) -> Reply:
        with self._lock:
            upload = self._uploads.get(params["upload_id"])
            if upload is None:
                raise StubError(404, f"unknown upload {params['upload_id']}")
            if int(request.headers.get("X-Goog-Upload-Offset") or 0) != len(upload.data):
                raise StubError(400, "X-Goog-Upload-Offset does not match the bytes received so far")
            upload.data += request.raw
            if "finalize" not in (request.headers.get("X-Goog-Upload-Command") or ""):
                return Reply(headers={"x-goog-upload-status": "active"})
            del self._uploads[params["upload_id"]]
            file = self._store(upload)
        return Reply(body={"file": self._file_json(file)}, headers={"x-goog-upload-status": "final"})

    def _store(self, upload: _Upload) -> _File:
        sha256 = base64.b64encode(hashlib.sha256(upload.data).hexdigest().encode()).decode()
        file = _File(upload.resource | {"sizeBytes": str(len(upload.data)), "sha256Hash": sha256}, bytes(upload.data))
        self._files[file.resource["name"].removeprefix("files/")] = file
        self._uploaded.append(self._file_json(file))
        return file

    def _file_get(self, _request: Request, params: dict[str, str], _fault: Fault | None) -> Reply:
        with self._lock:
            file = self._file(params["file_id"])
            file.gets += 1
            return Reply(body=self._file_json(file))

    def _file_delete(self, _request: Request, params: dict[str, str], _fault: Fault | None) -> Reply:
        with self._lock:
            self._file(params["file_id"])
            del self._files[params["file_id"]]
            self._deleted.append(f"files/{params['file_id']}")
        return Reply(body={})

    def _file(self, file_id: str) -> _File:
        file = self._files.get(file_id)
        if file is None:
            raise StubError(403, f"You do not have permission to access the File {file_id} or it may not exist.")
        return file

    def _file_state(self, file: _File) -> str:
        active_after = self.file_active_after_gets
        return "ACTIVE" if active_after is not None and file.gets >= active_after else "PROCESSING"

    def _file_json(self, file: _File) -> dict[str, Any]:
        state = self._file_state(file)
        resource = file.resource | {"state": state}
        if state == "ACTIVE" and resource["mimeType"].startswith("video/"):
            resource["videoMetadata"] = {"videoDuration": f"{self.media_seconds:g}s"}
        return resource

    # -- Batch API -------------------------------------------------------------------------------------------------
    def _batch_create(self, request: Request, params: dict[str, str], _fault: Fault | None) -> Reply:
        spec = request.json().get("batch", {})
        inlined = spec.get("inputConfig", {}).get("requests", {}).get("requests")
        if not inlined:
            raise StubError(400, "the stub only supports batches of inlined requests")
        items = [self._batch_item(params["model"], item) for item in inlined]
        name = self._next_id("batches/stub-batch-")
        batch = _Batch(name, f"models/{params['model']}", spec.get("displayName", ""), _now(), items)
        with self._lock:
            self._batches[name.removeprefix("batches/")] = batch
            return Reply(body=self._operation(batch))

    def _batch_item(self, model: str, item: dict[str, Any]) -> dict[str, Any]:
        result = {"metadata": item["metadata"]} if "metadata" in item else {}
        fault = self._take_fault("batch_item")
        if fault is not None and fault.kind in HTTP_FAULTS:
            return result | {"error": {"code": int(fault.kind), "message": f"stub fault {fault.kind}"}}
        try:
            return result | {"response": self._generate_response(model, item.get("request", {}), fault)}
        except StubError as exc:
            return result | {"error": {"code": exc.status, "message": exc.message}}

    def _batch_get(self, _request: Request, params: dict[str, str], _fault: Fault | None) -> Reply:
        with self._lock:
            batch = self._batch(params["batch_id"])
            batch.gets += 1
            if batch.state in _LIVE_BATCH_STATES:
                running = batch.gets <= self.batch_running_polls
                batch.state = "BATCH_STATE_RUNNING" if running else self.batch_final_state
            return Reply(body=self._operation(batch))

    def _batch_cancel(self, _request: Request, params: dict[str, str], _fault: Fault | None) -> Reply:
        with self._lock:
            batch = self._batch(params["batch_id"])
            if batch.state in _LIVE_BATCH_STATES:
                batch.state = "BATCH_STATE_CANCELLED"
        return Reply(body={})

    def _batch_delete(self, _request: Request, params: dict[str, str], _fault: Fault | None) -> Reply:
        with self._lock:
            self._batch(params["batch_id"])
            del self._batches[params["batch_id"]]
        return Reply(body={})

    def _batch(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise StubError(404, f"Batch batches/{batch_id} not found.")
        return batch

    def _operation(self, batch: _Batch) -> dict[str, Any]:
        """The long-running Operation the API returns for create and get (the SDK reads ``metadata``)."""
        failed = sum("error" in item for item in batch.items)
        done = batch.state not in _LIVE_BATCH_STATES
        stats = {"requestCount": str(len(batch.items)), "pendingRequestCount": str(0 if done else len(batch.items))}
        metadata: dict[str, Any] = {
            "@type": _BATCH_TYPE,
            "name": batch.name,
            "model": batch.model,
            "displayName": batch.display_name,
            "createTime": batch.create_time,
            "updateTime": _now(),
            "state": batch.state,
            "batchStats": stats,
        }
        operation: dict[str, Any] = {"name": batch.name, "metadata": metadata}
        if batch.state == "BATCH_STATE_SUCCEEDED":
            output = {"@type": _BATCH_OUTPUT_TYPE, "inlinedResponses": {"inlinedResponses": batch.items}}
            stats |= {"successfulRequestCount": str(len(batch.items) - failed), "failedRequestCount": str(failed)}
            metadata |= {"endTime": _now(), "output": output}
            operation["response"] = output
        elif batch.state == "BATCH_STATE_FAILED":
            operation["error"] = {"code": 13, "message": "stub batch failed"}
        return operation | ({"done": True} if done else {})


def _details(prompt: dict[str, int]) -> list[dict[str, Any]]:
    return [{"modality": modality, "tokenCount": count} for modality, count in prompt.items()]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
