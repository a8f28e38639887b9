"""A local OpenAI-compatible chat-completions server, so the real ``openai`` SDK (and LangChain's ``ChatOpenAI`` /
``AzureChatOpenAI``) runs against it.

::

    with OpenAIStub() as stub:
        client = OpenAI(base_url=stub.url + "/v1", api_key="test", max_retries=0)
        azure = AzureOpenAI(azure_endpoint=stub.url, api_version="2024-10-21", api_key="test", max_retries=0)

Endpoint ``chat`` (the name faults and the request log use): ``POST /v1/chat/completions`` and the Azure form
``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` (the deployment is the logged model).
Any API key is accepted; ``stream: true`` is not supported.

Answers: with ``tools`` (and ``tool_choice`` not "none") a ``tool_calls`` message calling the chosen function (the
forced one, else the first) with JSON ``arguments`` valid against its ``parameters``; with ``response_format``
``json_schema`` a JSON ``content`` valid against the schema; ``json_object`` → ``{}``; else plain text. A canned
:meth:`answer` replaces the generated JSON/text.

Usage: ``prompt_tokens`` = ``ceil(chars / 4)`` over text parts + image tokens (see ``_tokens``);
``completion_tokens`` = ``ceil(len(answer) / 4)`` + ``reasoning_tokens``; ``prompt_tokens_details.cached_tokens`` =
``cached_tokens``; ``completion_tokens_details.reasoning_tokens`` = ``reasoning_tokens`` (both default 0).

Content faults: ``malformed`` (content or arguments that are not JSON), ``wrong_schema`` (JSON that breaks the
schema), ``blocked`` (``finish_reason: "content_filter"``, no content, usage billed), ``prompt_filtered`` (Azure's
HTTP 400 with error code ``content_filter``, nothing billed). Plus the transport faults of ``_server``;
``latency_s`` delays every completion.
"""

from __future__ import annotations

import time
from typing import Any

from adpipeline.testing._server import Fault, Reply, Request, Route, StubServer, media_key
from adpipeline.testing._tokens import decode_base64, openai_image_tokens, text_tokens

_PROMPT_FILTERED = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {"violence": {"filtered": True, "severity": "high"}},
        },
    }
}
_ERROR_TYPES = {429: ("requests", "rate_limit_exceeded"), 500: ("server_error", None), 503: ("server_error", None)}


class OpenAIStub(StubServer):
    """OpenAI / Azure OpenAI chat completions on 127.0.0.1 (see the module docstring)."""

    fault_kinds = StubServer.fault_kinds | {"malformed", "wrong_schema", "blocked", "prompt_filtered"}
    content_endpoints = frozenset({"chat"})

    def __init__(self, *, port: int = 0, latency_s: float = 0.0) -> None:
        super().__init__(port=port, latency_s=latency_s)
        self.cached_tokens = 0
        self.reasoning_tokens = 0
        self.routes = [
            Route("POST", r"/v1/chat/completions", "chat", self._chat),
            Route("POST", r"/openai/deployments/(?P<model>[^/]+)/chat/completions", "chat", self._chat),
        ]

    def _error_body(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        error_type, code = _ERROR_TYPES.get(status, ("invalid_request_error", None))
        return {"error": {"message": message, "type": error_type, "param": None, "code": code}}

    def _chat(self, request: Request, params: dict[str, str], fault: Fault | None) -> Reply:
        time.sleep(self.latency_s)
        if fault is not None and fault.kind == "prompt_filtered":
            return Reply(400, body=_PROMPT_FILTERED)
        body = request.json()
        model = body.get("model") or params.get("model", "")
        schema, tool_name = _structured_target(body)
        json_mode = body.get("response_format", {}).get("type") == "json_object"
        text = self._answer_text(model, schema, json_mode, fault)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        finish_reason = "stop"
        if fault is not None and fault.kind == "blocked":
            message["content"], finish_reason, text = None, "content_filter", ""
        elif tool_name is not None:
            function = {"name": tool_name, "arguments": text}
            call = {"id": self._next_id("call_stub"), "type": "function", "function": function}
            message |= {"content": None, "tool_calls": [call]}
            finish_reason = "tool_calls"
        choice = {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        usage = self._usage(_prompt_tokens(body.get("messages", [])), text_tokens(text))
        self._bill(usage, media_key=_media_key(body.get("messages", [])), clean=fault is None)
        return Reply(
            body={
                "id": self._next_id("chatcmpl-stub"),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_stub",
                "choices": [choice],
                "usage": usage,
            }
        )

    def _usage(self, prompt: int, completion: int) -> dict[str, Any]:
        completion += self.reasoning_tokens
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": min(self.cached_tokens, prompt), "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens, "audio_tokens": 0},
        }
        return usage


def _structured_target(body: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(the schema the answer must satisfy, the tool to call) for tool calling or ``json_schema`` output."""
    tools = [tool["function"] for tool in body.get("tools", []) if tool.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    if tools and choice != "none":
        name = choice["function"]["name"] if isinstance(choice, dict) else tools[0]["name"]
        function = next(tool for tool in tools if tool["name"] == name)
        return function.get("parameters", {}), name
    response_format = body.get("response_format", {})
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"].get("schema", {}), None
    return None, None


def _media_key(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "image_url":
                return media_key(part["image_url"].get("url", ""))
    return ""


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content") or ""
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        total += sum(_part_tokens(part) for part in parts)
    return total


def _part_tokens(part: dict[str, Any]) -> int:
    if part.get("type") == "image_url":
        image = part["image_url"]
        url: str = image.get("url", "")
        data = decode_base64(url.partition(",")[2]) if url.startswith("data:") else None
        return openai_image_tokens(data, image.get("detail", "auto"))
    return text_tokens(part.get("text", ""))
