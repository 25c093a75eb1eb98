"""OpenAI-compatible routes (``/v1/chat/completions`` with SSE streaming,
``/v1/completions`` (a raw prompt, no chat template), ``/v1/embeddings``, ``/v1/models``),
as Ollama also offers them. The wire format is
``wire.openai``; the model work is the server's ``ModelService``, as for the Ollama API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from openai.types import CreateEmbeddingResponse
from openai.types import Model as OpenAIModel
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response as OpenAIResponse
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adam_integrations.core.errors import AdamError, InvalidRequestError, ModelNotFoundError
from adam_integrations.core.stores.gguf_header import ENCODER_ARCHITECTURES
from adam_integrations.core.types import Chunk, TokenLogprob
from adam_integrations.served import ServedModel
from adam_integrations.server.dialects import RERANK_ROUTES
from adam_integrations.server.errors import code_of, status_of
from adam_integrations.server.names import canonical_name
from adam_integrations.server.openapi import (
    EMBEDDER,
    MODEL,
    WHY,
    answer,
    json_content,
    operation,
    ref,
    request_body,
    streamed,
)
from adam_integrations.server.request_body import read_json
from adam_integrations.server.serving import ModelService, StoredModel
from adam_integrations.server.streams import built_answer, sse_data, started_stream
from adam_integrations.wire import openai as wire
from adam_integrations.wire import openai_responses as responses_wire
from adam_integrations.wire import rerank as rerank_wire


def routes(service: ModelService) -> list[Route]:
    api = OpenAIApi(service)
    return [
        Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
        Route("/v1/completions", api.completions, methods=["POST"]),
        Route("/v1/embeddings", api.embeddings, methods=["POST"]),
        *(Route(path, api.rerank, methods=["POST"]) for path in ("/v1/rerank",
                                                                 *RERANK_ROUTES)),
        Route("/v1/responses", api.responses, methods=["POST"]),
        Route("/v1/models", api.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", api.get_model, methods=["GET"]),
        # vLLM's tokenizer endpoints (what lm-eval's remote tokenizer reads)
        Route("/tokenize", api.tokenize, methods=["POST"]),
        Route("/detokenize", api.detokenize, methods=["POST"]),
        Route("/tokenizer_info", api.tokenizer_info, methods=["GET"]),
    ]


class OpenAIApi:
    """The ``/v1`` handlers."""

    def __init__(self, service: ModelService) -> None:
        self.service = service

    async def chat_completions(self, request: Request) -> Response:
        body = await read_json(request)
        chat = wire.ChatCompletionRequest.parse(body)
        served = await self.service.get(chat.model)
        answer = await self.service.chat(served, chat.chat_messages(), chat.to_config())
        completion = _Completion(f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()),
                                 body["model"])
        return await completion.respond(body, answer.chunks)

    async def completions(self, request: Request) -> Response:
        body = await read_json(request)
        served = await self.service.get(body.get("model"))
        if body.get("tools") or body.get("tool_choice"):
            raise InvalidRequestError("/v1/completions takes no tools; use /v1/chat/completions")
        config = wire.CompletionRequest.parse(body).to_config()
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and not isinstance(prompt[0], int):
            prompt = prompt[0]
        if isinstance(prompt, list):  # token ids (schema-checked)
            await self.service.load(served)
            prompt = await self.service.prompt_of_tokens(served, prompt)
        if not isinstance(prompt, str) or not prompt:
            raise InvalidRequestError("prompt must be a non-empty string", param="prompt")
        await self.service.load(served)
        suffix = body.get("suffix") or None
        echo = body.get("echo") is True
        if echo and suffix is not None:
            raise InvalidRequestError("echo and suffix do not go together: the prompt is "
                                      "not what comes before an insertion", param="echo")
        answer = await self.service.complete(served, prompt, config, suffix=suffix)
        completion = _TextCompletion(f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time()),
                                     body["model"])
        echoed = None
        if echo:  # the prompt first (scored when logprobs are asked for), as OpenAI's
            scored = await self.service.score_prompt(
                served, prompt, config.top_logprobs or 0) \
                if config.logprobs else []
            echoed = Chunk(text=prompt, logprobs=scored)
        return await completion.respond(body, _chain(echoed, answer.chunks))

    async def embeddings(self, request: Request) -> Response:
        body = await read_json(request)
        served = await self.service.get(body.get("model"), embedding=True)
        embedding = wire.EmbeddingRequest.parse(body)
        texts = [embedding.input] if isinstance(embedding.input, str) else embedding.input
        vectors = await self.service.embed(served, texts, dimensions=embedding.dimensions)
        tokens = await self.service.token_count(served, texts)
        encode = wire.base64_vector if embedding.encoding_format == "base64" else list
        # written directly, not read into openai.CreateEmbeddingResponse as the other whole
        # answers are: checking every float of a large batch costs a tenth of writing it
        # out, on a throughput path (tests/unit/server/test_sdk_types.py holds the shape)
        return JSONResponse({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def rerank(self, request: Request) -> Response:
        """vLLM's and llama-server's reranking (``wire.rerank``), on any chat model."""
        body = await read_json(request)
        asked = rerank_wire.RerankRequest.parse(body)
        served = await self.service.get(asked.model)
        reranking = await self.service.rerank(served, asked.query, asked.texts(),
                                              top_n=asked.top_n,
                                              instruction=asked.instruction)
        return JSONResponse(rerank_wire.rerank_answer(reranking, asked.model, asked))

    async def responses(self, request: Request) -> Response:
        """OpenAI's Responses API, stateless (``wire.openai_responses``): the same stream
        as a chat completion, as Responses events, or the response they build."""
        body = await read_json(request)
        served = await self.service.get(body.get("model"))
        asked = responses_wire.ResponsesRequest.parse(body)
        messages, config = asked.conversation(), asked.to_config()
        answer = await self.service.chat(served, messages, config)
        return await built_answer(
            answer.chunks, responses_wire.ResponseBuilder(body["model"], body),
            stream=bool(body.get("stream")), error_event=_error_event)

    async def tokenize(self, request: Request) -> Response:
        """vLLM's ``POST /tokenize``: ``{"tokens", "count", "max_model_len"}``, the tokens
        a completion reads ``prompt`` as (``add_special_tokens``: with the BOS token)."""
        tokenize = wire.TokenizeRequest.parse(await read_json(request))
        served = await self._tokenizer_model(tokenize.model)
        tokens = await asyncio.to_thread(
            served.backend.tokenize, tokenize.prompt,
            add_special_tokens=tokenize.add_special_tokens is not False)
        window = (await asyncio.to_thread(served.backend.info)).context_window
        return JSONResponse({"tokens": tokens, "count": len(tokens),
                             "max_model_len": window})

    async def detokenize(self, request: Request) -> Response:
        """vLLM's ``POST /detokenize``: ``{"prompt"}``, the text of ``tokens``."""
        detokenize = wire.DetokenizeRequest.parse(await read_json(request))
        served = await self._tokenizer_model(detokenize.model)
        text = await asyncio.to_thread(served.backend.detokenize, detokenize.tokens)
        return JSONResponse({"prompt": text})

    async def tokenizer_info(self, request: Request) -> Response:
        """vLLM's ``GET /tokenizer_info`` (``?model=`` names the model): the special
        tokens, the chat template and the context window."""
        served = await self._tokenizer_model(request.query_params.get("model"))
        backend = served.backend
        info, template, special = await asyncio.gather(
            asyncio.to_thread(backend.info), asyncio.to_thread(backend.chat_template),
            asyncio.to_thread(backend.special_tokens))
        return JSONResponse({"tokenizer_class": backend.name, "model": served.name,
                             "model_max_length": info.context_window,
                             "chat_template": template, **special})

    async def _tokenizer_model(self, name: object) -> ServedModel:
        """The model named (loaded now). Unnamed (lm-eval's remote tokenizer names none,
        as vLLM serves one model): the one chat model in memory, else the one chat model
        served; any other case is refused, never guessed (a guess would score one model's
        answers with another's tokens)."""
        if name is None:
            running = [m.stored.name for m in await self.service.running()
                       if _chat(m.stored)]
            served = [m.name for m in await self.service.stored() if _chat(m)]
            if len(running) == 1 or len(served) == 1:
                name = running[0] if len(running) == 1 else served[0]
            else:
                raise InvalidRequestError(
                    f"name the model (\"model\" in the body, ?model= on /tokenizer_info): "
                    f"{len(running)} chat models are loaded and {len(served)} served here "
                    "(with one loaded, it is the one)", param="model")
        served = await self.service.get(name)
        await self.service.load(served)
        return served

    async def list_models(self, request: Request) -> Response:
        stored = await self.service.stored()
        return JSONResponse({"object": "list", "data": [_model_entry(m) for m in stored]})

    async def get_model(self, request: Request) -> Response:
        """``GET /v1/models/{id}``: one model of the list (a 404 when it is not listed)."""
        wanted = canonical_name(str(request.path_params["model"]))
        for model in await self.service.stored():
            if model.name.lower() == wanted.lower():
                return JSONResponse(_model_entry(model))
        raise ModelNotFoundError(f'model "{request.path_params["model"]}" not found')


class _Completion:
    """One chat completion's identity, and its answer as SSE events or one object."""

    chunk_object = "chat.completion.chunk"

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self.id, self.created, self.model = completion_id, created, model

    def _event(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None
               ) -> bytes:
        payload: dict[str, Any] = {"id": self.id, "object": self.chunk_object,
                                   "created": self.created, "model": self.model,
                                   "choices": choices}
        if usage is not None:
            payload["usage"] = usage
        return sse_data(payload)

    def _delta(self, delta: dict[str, Any], finish: str | None = None,
               logprobs: list[TokenLogprob] | None = None) -> bytes:
        return self._event([{"index": 0, "delta": delta, "finish_reason": finish,
                             "logprobs": self._logprobs(logprobs)}])

    def _logprobs(self, logprobs: list[TokenLogprob] | None) -> dict[str, Any] | None:
        """A choice's ``logprobs`` (None when none were asked for or generated)."""
        return wire.chat_logprobs(logprobs) if logprobs else None

    async def respond(self, body: dict[str, Any], chunks: AsyncIterator[Chunk]) -> Response:
        """SSE events when the request asks ``"stream": true``, else one object."""
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await started_stream(self.events(chunks, include_usage),
                                        "text/event-stream")
        return JSONResponse(await self.whole(chunks))

    async def events(self, chunks: AsyncIterator[Chunk], include_usage: bool
                     ) -> AsyncIterator[bytes]:
        first = await anext(chunks, None)  # fails before the response starts
        yield self._delta({"role": "assistant", "content": ""})
        try:
            async for event in self._answer_events(first, chunks, include_usage):
                yield event
        except Exception as error:  # after the start: an error event, as vLLM sends
            status = status_of(error) if isinstance(error, AdamError) else 500
            payload = wire.error_object(status, str(error), code=code_of(error)
                                        if isinstance(error, AdamError) else None)
            yield sse_data(payload)
        yield b"data: [DONE]\n\n"

    async def _answer_events(self, first: Chunk | None, chunks: AsyncIterator[Chunk],
                             include_usage: bool) -> AsyncIterator[bytes]:
        calls = 0
        async for chunk in _chain(first, chunks):
            logprobs = chunk.logprobs  # with the chunk's first event
            if chunk.thinking:
                yield self._delta(wire.reasoning_fields(chunk.thinking), None, logprobs)
                logprobs = []
            if chunk.text:
                yield self._delta({"content": chunk.text}, None, logprobs)
                logprobs = []
            for call in chunk.tool_calls:
                yield self._delta({"tool_calls": [wire.tool_call_to_wire(call, calls)]},
                                  None, logprobs)
                logprobs, calls = [], calls + 1
            if chunk.finish_reason is not None:
                finish = "tool_calls" if calls else wire.FINISH_REASONS.get(
                    chunk.finish_reason, "stop")
                yield self._delta({}, finish, logprobs)
                if include_usage and chunk.usage is not None:
                    yield self._event([], wire.usage_to_wire(chunk.usage))

    async def whole(self, chunks: AsyncIterator[Chunk]) -> dict[str, Any]:
        text, thinking, calls, finish, usage = "", "", [], "stop", None
        logprobs: list[TokenLogprob] = []
        async for chunk in chunks:
            text += chunk.text
            thinking += chunk.thinking
            calls.extend(chunk.tool_calls)
            logprobs.extend(chunk.logprobs)
            if chunk.finish_reason is not None:
                finish = wire.FINISH_REASONS.get(chunk.finish_reason, "stop")
                usage = chunk.usage
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if thinking:
            message.update(wire.reasoning_fields(thinking))
        if calls:
            message["tool_calls"] = [wire.tool_call_to_wire(c, i) for i, c in enumerate(calls)]
            finish = "tool_calls"
        return _as(ChatCompletion, {
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.model, "system_fingerprint": "adam",
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": self._logprobs(logprobs)}],
            "usage": wire.usage_to_wire(usage)})


class _TextCompletion(_Completion):
    """A ``/v1/completions`` answer: ``text`` in each choice instead of a message delta."""

    chunk_object = "text_completion"

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        super().__init__(completion_id, created, model)
        self._offset = 0  # text_offset of the next token reported

    def _delta(self, delta: dict[str, Any], finish: str | None = None,
               logprobs: list[TokenLogprob] | None = None) -> bytes:
        if "role" in delta:  # chat's opening event has no counterpart here
            return b""
        return self._event([{"index": 0, "text": delta.get("content", ""),
                             "finish_reason": finish, "logprobs": self._logprobs(logprobs)}])

    def _logprobs(self, logprobs: list[TokenLogprob] | None) -> dict[str, Any] | None:
        if not logprobs:
            return None
        described = wire.completion_logprobs(logprobs, self._offset)
        self._offset += sum(len(logprob.token) for logprob in logprobs)
        return described

    async def whole(self, chunks: AsyncIterator[Chunk]) -> dict[str, Any]:
        answer = await super().whole(chunks)
        choice = answer["choices"][0]
        answer.update(object="text_completion", choices=[{
            "index": 0, "text": choice["message"]["content"],
            "finish_reason": choice["finish_reason"], "logprobs": choice["logprobs"]}])
        return answer  # not openai.Completion: echo's first logprob is null


def _chat(model: StoredModel) -> bool:
    """Whether a stored model generates text (not an encoder-only embedding model)."""
    return model.weights is None or model.weights.architecture not in ENCODER_ARCHITECTURES


def _error_event(error: Exception) -> dict[str, Any]:
    """A Responses stream's ``error`` event."""
    status = status_of(error) if isinstance(error, AdamError) else 500
    return {"type": "error", **wire.error_object(status, str(error))["error"]}


def _model_entry(model: StoredModel) -> dict[str, Any]:
    return _as(OpenAIModel, {"id": model.name, "object": "model", "owned_by": "adam",
                             "created": int(model.modified_at.timestamp())})


def _as(sdk_type: type[BaseModel], answer: dict[str, Any]) -> dict[str, Any]:
    """A whole answer as the ``openai`` SDK's own type (``ChatCompletion``...): read into
    it strictly, so an answer its client could not read fails here, in the tests, not in
    a user's program; written back as sent (fields left unset stay out). Streamed chunks
    are the same shapes (tests/unit/server/test_sdk_types.py), written directly: they
    are the hot path."""
    return sdk_type.model_validate(answer, strict=True).model_dump(
        mode="json", exclude_unset=True)


async def _chain(first: Chunk | None, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    if first is not None:
        yield first
    async for item in rest:
        yield item


# -- this dialect's part of /openapi.json (server.openapi) ------------------------
def _tokenizer_info() -> dict[str, Any]:
    """``GET /tokenizer_info``: a model named by ``?model=`` (a 400 when it is not a
    name, or when none is and the model cannot be told)."""
    described = operation("/tokenizer_info", "vLLM's tokenizer: special tokens, chat "
                           "template, context window", {"content": json_content({
                               "type": "object", "properties": {
                                   name: {"type": ["string", "null"]} for name in (
                                       "bos_token", "eos_token", "pad_token",
                                       "chat_template")}})})
    described["responses"]["400"] = {"description": WHY["400"],
                                     "content": json_content(ref("OpenAIError"))}
    described["parameters"] = [{"name": "model", "in": "query", "required": False,
                                "schema": MODEL}]
    return described


_BASE64_EMBEDDINGS = {
    "type": "object", "required": ["object", "data", "model", "usage"],
    "description": "encoding_format base64: as openai.CreateEmbeddingResponse, each vector "
                   "as base64 (the SDK's type holds the floats its client decodes)",
    "properties": {"object": {"const": "list"}, "model": {"type": "string"},
                   "usage": ref("openai.Usage"), "data": {"type": "array", "items": {
                       "type": "object", "required": ["object", "index", "embedding"],
                       "properties": {"object": {"const": "embedding"},
                                      "index": {"type": "integer"},
                                      "embedding": {"type": "string",
                                                    "contentEncoding": "base64"}}}}}}


OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/v1/chat/completions": {"post": operation(
        "/v1/chat/completions", "an OpenAI chat completion (server-sent events when "
        "stream=true)", streamed(answer(ChatCompletion), "text/event-stream",
                                  answer(ChatCompletionChunk)),
        request_body(wire.ChatCompletionRequest))},
    "/v1/completions": {"post": operation(
        "/v1/completions", "an OpenAI text completion of a raw prompt (server-sent events "
        "when stream=true)", streamed(ref("TextCompletion"), "text/event-stream"),
        request_body(wire.CompletionRequest))},
    "/v1/embeddings": {"post": operation("/v1/embeddings", "OpenAI embeddings", {
        "content": json_content({"anyOf": [answer(CreateEmbeddingResponse),
                                           _BASE64_EMBEDDINGS]})},
        request_body(wire.EmbeddingRequest, EMBEDDER))},
    "/v1/responses": {"post": operation(
        "/v1/responses", "an OpenAI Responses API answer, stateless (events when stream=true)",
        streamed(answer(OpenAIResponse), "text/event-stream",
                 {"type": "object", "required": ["type"]}),
        request_body(responses_wire.ResponsesRequest))},
    "/v1/models/{model}": {"get": {
        **operation("/v1/models/{model}", "one model, as OpenAI describes it", {
            "content": json_content({"type": "object", "required": ["id", "object"], "properties": {
                "id": {"type": "string"}, "object": {"const": "model"}}})}),
        "parameters": [{"name": "model", "in": "path", "required": True,
                        "schema": {"type": "string"}}]}},
    "/v1/models": {"get": operation("/v1/models", "the models, as OpenAI lists them", {
        "content": json_content({"type": "object", "required": ["object", "data"], "properties": {
            "object": {"const": "list"}, "data": {"type": "array", "items": {
                "type": "object", "properties": {"id": {"type": "string"},
                                                 "object": {"const": "model"}}}}}})})},
    "/tokenize": {"post": operation("/tokenize", "vLLM's tokenizer: the tokens a "
                                                  "completion reads the prompt as", {
        "content": json_content({"type": "object", "required": ["tokens", "count"], "properties": {
            "tokens": {"type": "array", "items": {"type": "integer"}},
            "count": {"type": "integer"}, "max_model_len": {"type": ["integer", "null"]}}})},
        request_body(wire.TokenizeRequest))},
    "/detokenize": {"post": operation("/detokenize", "vLLM's tokenizer: the text of "
                                                      "token ids", {
        "content": json_content({"type": "object", "required": ["prompt"], "properties": {
            "prompt": {"type": "string"}}})},
        request_body(wire.DetokenizeRequest))},
    "/tokenizer_info": {"get": _tokenizer_info()},
    **{path: {"post": operation(path, "documents ranked for a query (vLLM's and "
                                      "llama-server's rerank), on any chat model",
                                {"content": json_content(rerank_wire.RERANK_ANSWER)},
                                request_body(rerank_wire.RerankRequest))}
       for path in ("/v1/rerank", *RERANK_ROUTES)},
}
"""This dialect's routes as ``/openapi.json`` describes them (``server.openapi``)."""
