"""The Ollama REST API (``/api/*``) over this package's backends.

Requests are translated to the core types (``GenerationConfig``, ``ChatMessage``) and
answered from the same streams every other entry point uses; the protocol details that
clients rely on (see the project's Ollama notes) are kept here: NDJSON streaming unless
``"stream": false``, integer-nanosecond durations, counts only on the ``done`` line,
``{"error": ...}`` with the right status before streaming and as the last line after.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from adam_integrations.core import __version__
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.loaded import loaded_models, parse_keep_alive
from adam_integrations.core.types import ChatMessage, Chunk, GenerationConfig, ToolCall, Usage
from adam_integrations.server.models import Served, ServedModels

OLLAMA_VERSION = "0.12.0"  # the Ollama API level these routes follow, for clients that check
DEFAULT_KEEP_ALIVE = 300.0

# Ollama option -> GenerationConfig field, and the type each must have.
_OPTIONS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "num_predict": ("max_tokens", int),
    "temperature": ("temperature", (int, float)),
    "top_p": ("top_p", (int, float)),
    "top_k": ("top_k", int),
    "min_p": ("min_p", (int, float)),
    "seed": ("seed", int),
    "stop": ("stop", (list, str)),
    "repeat_penalty": ("repetition_penalty", (int, float)),
    "presence_penalty": ("presence_penalty", (int, float)),
    "frequency_penalty": ("frequency_penalty", (int, float)),
}


def routes(models: ServedModels) -> list[Route]:
    api = OllamaApi(models)
    return [
        Route("/", api.root, methods=["GET", "HEAD"]),
        Route("/api/version", api.version, methods=["GET"]),
        Route("/api/tags", api.tags, methods=["GET"]),
        Route("/api/ps", api.ps, methods=["GET"]),
        Route("/api/show", api.show, methods=["POST"]),
        Route("/api/chat", api.chat, methods=["POST"]),
        Route("/api/generate", api.generate, methods=["POST"]),
        Route("/api/embed", api.embed, methods=["POST"]),
        Route("/api/embeddings", api.embeddings, methods=["POST"]),
        Route("/api/pull", api.pull, methods=["POST"]),
        Route("/api/copy", api.copy, methods=["POST"]),
        Route("/api/delete", api.delete, methods=["DELETE"]),
    ]


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def nanoseconds(seconds: float) -> int:
    return int(seconds * 1e9)


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or InvalidRequestError (a 400)."""
    body = await request.body()
    try:
        data = json.loads(body or b"{}")
    except ValueError as error:
        raise InvalidRequestError(f"invalid JSON in the request body: {error}") from error
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    return data


def generation_config(body: Mapping[str, Any], *, tools: bool = True) -> GenerationConfig:
    """Ollama's ``options``, ``format``, ``think`` and ``tools`` as a GenerationConfig.
    Unknown options and null values are ignored, as Ollama ignores them."""
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidRequestError("options must be an object")
    fields: dict[str, Any] = {}
    for key, value in options.items():
        if value is None or key not in _OPTIONS:
            continue
        name, kinds = _OPTIONS[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise InvalidRequestError(
                f"option \"{key}\" must be of type {_type_name(kinds)}, got {value!r}")
        if key == "num_predict" and value < 0:
            continue  # -1 / -2: until the model stops or the context is full
        fields[name] = float(value) if kinds == (int, float) else value
    fmt = body.get("format")
    if fmt not in (None, ""):
        fields["response_format"] = fmt
    think = body.get("think")
    if think is not None:
        fields["think"] = think if isinstance(think, bool) else think in ("low", "medium",
                                                                           "high")
    if tools and body.get("tools"):
        fields["tools"] = body["tools"]
    return GenerationConfig(**fields)


def _type_name(kinds: type | tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", list: "array", str: "string"}
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def chat_messages(raw: Any) -> list[ChatMessage]:
    """Ollama chat messages as core messages (tool calls with object arguments,
    ``tool_name`` on tool results; images are refused: no vision model is served)."""
    if not isinstance(raw, list):
        raise InvalidRequestError("messages must be a list")
    messages = []
    for item in raw:
        if not isinstance(item, dict) or "role" not in item:
            raise InvalidRequestError("each message needs a role")
        if item.get("images"):
            raise InvalidRequestError("this model cannot read images")
        calls = []
        for call in item.get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = function.get("arguments") or {}
            if isinstance(arguments, str):
                arguments = json.loads(arguments or "{}")
            calls.append(ToolCall(name=function.get("name", ""), arguments=arguments,
                                  id=call.get("id") or ""))
        messages.append(ChatMessage(
            role=item["role"], content=item.get("content") or "", tool_calls=calls,
            name=item.get("tool_name") or item.get("name"),
            tool_call_id=item.get("tool_call_id"), thinking=item.get("thinking")))
    return messages


def tool_call_json(call: ToolCall, index: int) -> dict[str, Any]:
    return {"id": call.id, "function": {"index": index, "name": call.name,
                                        "arguments": call.arguments}}


def final_fields(usage: Usage | None, finish_reason: str | None,
                 load_seconds: float = 0.0) -> dict[str, Any]:
    """The ``done`` line's fields; ``load_seconds``: a load before generation started."""
    usage = usage or Usage()
    return {
        "done": True,
        "done_reason": finish_reason or "stop",
        "total_duration": nanoseconds(usage.total_seconds + load_seconds),
        "load_duration": nanoseconds(usage.load_seconds + load_seconds),
        "prompt_eval_count": usage.prompt_tokens,
        "prompt_eval_duration": nanoseconds(usage.prompt_seconds),
        "eval_count": usage.completion_tokens,
        "eval_duration": nanoseconds(usage.completion_seconds),
    }


async def ndjson(lines: AsyncIterator[dict[str, Any]]) -> Response:
    """A streamed NDJSON response (see ``started_stream``); a failure after the start
    ends the stream with an ``{"error"}`` line."""

    async def encode() -> AsyncIterator[bytes]:
        started = False
        try:
            async for line in lines:
                started = True
                yield _line(line)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not started:
                raise  # before the response: its own status
            yield json.dumps({"error": str(error)}).encode() + b"\n"

    return await started_stream(encode(), "application/x-ndjson")


async def started_stream(body: AsyncIterator[bytes], media_type: str) -> Response:
    """A streaming response whose first piece is computed before the response starts,
    so a request that fails at once (a bad option, a model that cannot think) gets its
    real status instead of a 200 with an error inside."""
    try:
        first = await anext(body)
    except StopAsyncIteration:
        first = b""

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for piece in body:
            yield piece

    return StreamingResponse(rest(), media_type=media_type)


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class OllamaApi:
    """The route handlers; errors raised here become ``{"error"}`` bodies (``app.py``)."""

    def __init__(self, models: ServedModels) -> None:
        self.models = models

    async def root(self, request: Request) -> Response:
        return Response("Ollama is running", media_type="text/plain")

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": OLLAMA_VERSION, "adam_integrations": __version__})

    async def tags(self, request: Request) -> Response:
        entries = await asyncio.to_thread(self.models.listed)
        return JSONResponse({"models": [_tag_entry(name, source)
                                        for name, source in entries]})

    async def ps(self, request: Request) -> Response:
        running = []
        for backend in loaded_models.loaded():
            source = backend.source  # type: ignore[attr-defined]
            info = backend.info()
            expires = loaded_models.expires_in(backend)
            entry = _tag_entry(self.models.name_of(backend), source)
            entry.update({
                "expires_at": (datetime.now(timezone.utc) + timedelta(
                    seconds=expires if expires is not None else 10 * 365 * 86400)
                ).isoformat().replace("+00:00", "Z"),
                "size_vram": 0 if info.device == "cpu" else entry["size"],
                "context_length": info.context_window or 0,
            })
            running.append(entry)
        return JSONResponse({"models": running})

    async def show(self, request: Request) -> Response:
        body = await read_json(request)
        served = self.models.get(body.get("model") or body.get("name"))
        info = await asyncio.to_thread(served.backend.info)
        family = info.family or "unknown"
        model_info: dict[str, Any] = {"general.architecture": family}
        if info.parameter_count:
            model_info["general.parameter_count"] = info.parameter_count
        if info.context_window:
            model_info[f"{family}.context_length"] = info.context_window
        if info.embedding_dimension:
            model_info[f"{family}.embedding_length"] = info.embedding_dimension
        capabilities = [c for c in info.capabilities if c in
                        ("completion", "tools", "thinking", "embedding", "vision", "insert")]
        loaded = getattr(served.backend, "_loaded", None)
        template = getattr(loaded, "template", None) or ""
        return JSONResponse({
            "license": "", "modelfile": f"# adam-integrations: {served.explanation}\n",
            "parameters": "", "template": template if isinstance(template, str) else "",
            "details": _details(served.source, info.family, info.parameter_count,
                                info.quantization or info.dtype),
            "model_info": model_info, "capabilities": capabilities,
            "modified_at": now_rfc3339(),
        })

    async def chat(self, request: Request) -> Response:
        body = await read_json(request)
        served = self.models.get(body.get("model"))
        keep_alive = self._keep_alive(body)
        messages = body.get("messages")
        if not messages:  # load or unload only, as Ollama does
            return await self._load_or_unload(body, served, keep_alive, chat=True)
        checked, config = chat_messages(messages), generation_config(body)
        load_seconds = await self._load(served)  # load errors keep their status
        name = body["model"]

        async def lines() -> AsyncIterator[dict[str, Any]]:
            async for chunk in self._stream(served, keep_alive,
                                            served.backend.astream_chat(checked, config)):
                message: dict[str, Any] = {"role": "assistant", "content": chunk.text}
                if chunk.thinking:
                    message["thinking"] = chunk.thinking
                if chunk.tool_calls:
                    message["tool_calls"] = [tool_call_json(c, i)
                                             for i, c in enumerate(chunk.tool_calls)]
                line = {"model": name, "created_at": now_rfc3339(), "message": message,
                        "done": False}
                if chunk.usage is not None or chunk.finish_reason is not None:
                    line.update(final_fields(chunk.usage, chunk.finish_reason, load_seconds))
                yield line

        if body.get("stream", True) is not False:
            return await ndjson(lines())
        return JSONResponse(_merge_chat([line async for line in lines()]))

    async def generate(self, request: Request) -> Response:
        body = await read_json(request)
        served = self.models.get(body.get("model"))
        keep_alive = self._keep_alive(body)
        prompt = body.get("prompt")
        if not prompt:
            return await self._load_or_unload(body, served, keep_alive, chat=False)
        if not isinstance(prompt, str):
            raise InvalidRequestError("prompt must be a string")
        config = generation_config(body, tools=False)
        load_seconds = await self._load(served)
        if body.get("raw"):
            stream = served.backend.astream_complete(prompt, config)
        else:
            messages = [ChatMessage("user", prompt)]
            if body.get("system"):
                messages.insert(0, ChatMessage("system", body["system"]))
            stream = served.backend.astream_chat(messages, config)
        name = body["model"]

        async def lines() -> AsyncIterator[dict[str, Any]]:
            async for chunk in self._stream(served, keep_alive, stream):
                line: dict[str, Any] = {"model": name, "created_at": now_rfc3339(),
                                        "response": chunk.text, "done": False}
                if chunk.thinking:
                    line["thinking"] = chunk.thinking
                if chunk.usage is not None or chunk.finish_reason is not None:
                    line.update(final_fields(chunk.usage, chunk.finish_reason, load_seconds))
                    line["context"] = []
                yield line

        if body.get("stream", True) is not False:
            return await ndjson(lines())
        collected = [line async for line in lines()]
        merged = dict(collected[-1])
        merged["response"] = "".join(line["response"] for line in collected)
        thinking = "".join(line.get("thinking", "") for line in collected)
        if thinking:
            merged["thinking"] = thinking
        return JSONResponse(merged)

    async def embed(self, request: Request) -> Response:
        body = await read_json(request)
        served = self.models.get(body.get("model"), embedding=True)
        inputs = body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise InvalidRequestError("input must be a string or a list of strings")
        keep_alive = self._keep_alive(body)
        started = time.perf_counter()
        was_loaded = served.backend.is_loaded
        vectors = await self._embed(served, keep_alive, texts)
        total = time.perf_counter() - started
        count = await token_count(served, texts)
        return JSONResponse({"model": body["model"], "embeddings": vectors,
                             "total_duration": nanoseconds(total),
                             "load_duration": 0 if was_loaded else nanoseconds(total),
                             "prompt_eval_count": count})

    async def embeddings(self, request: Request) -> Response:
        body = await read_json(request)
        served = self.models.get(body.get("model"), embedding=True)
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str):
            raise InvalidRequestError("prompt must be a string")
        if not prompt:
            return JSONResponse({"embedding": []})
        vectors = await self._embed(served, self._keep_alive(body), [prompt])
        return JSONResponse({"embedding": vectors[0]})

    async def pull(self, request: Request) -> Response:
        body = await read_json(request)
        name = body.get("model") or body.get("name")
        served = self.models.get(name)

        async def lines() -> AsyncIterator[dict[str, Any]]:
            # Downloads what is missing (hub models, when online); offline or unknown,
            # the error comes with its status before anything is streamed.
            await asyncio.to_thread(served.backend.load)
            yield {"status": f"{name} is on disk and loaded"}
            yield {"status": "success"}

        if body.get("stream", True) is not False:
            return await ndjson(lines())
        return JSONResponse([line async for line in lines()][-1])

    async def copy(self, request: Request) -> Response:
        body = await read_json(request)
        source, destination = body.get("source"), body.get("destination")
        if not source or not destination:
            raise InvalidRequestError("source and destination are required")
        await asyncio.to_thread(self.models.copy, source, destination)
        return Response(status_code=200)

    async def delete(self, request: Request) -> Response:
        body = await read_json(request)
        await asyncio.to_thread(self.models.delete, body.get("model") or body.get("name"))
        return Response(status_code=200)

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def _keep_alive(body: Mapping[str, Any]) -> float | None:
        value = body.get("keep_alive")
        return DEFAULT_KEEP_ALIVE if value is None else parse_keep_alive(value)

    @staticmethod
    async def _load(served: Served) -> float:
        """Load the model before answering (so load errors get their status); seconds."""
        if served.backend.is_loaded:
            return 0.0
        started = time.perf_counter()
        await asyncio.to_thread(served.backend.load)
        return time.perf_counter() - started

    async def _stream(self, served: Served, keep_alive: float | None,
                      chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        """The backend's chunks, with the model marked busy (never unloaded mid-answer)
        and its keep-alive set for after."""
        loaded_models.begin(served.backend)
        try:
            async for chunk in chunks:
                if chunk.text or chunk.thinking or chunk.tool_calls or chunk.usage \
                        or chunk.finish_reason:
                    yield chunk
        finally:
            loaded_models.set_keep_alive(served.backend, keep_alive)
            loaded_models.end(served.backend)

    async def _embed(self, served: Served, keep_alive: float | None,
                     texts: list[str]) -> list[list[float]]:
        loaded_models.begin(served.backend)
        try:
            vectors = await served.backend.aembed(texts)
        finally:
            loaded_models.set_keep_alive(served.backend, keep_alive)
            loaded_models.end(served.backend)
        return [_normalized(v) for v in vectors]

    async def _load_or_unload(self, body: Mapping[str, Any], served: Served,
                              keep_alive: float | None, *, chat: bool) -> Response:
        if keep_alive == 0:
            await asyncio.to_thread(served.backend.unload)
            reason = "unload"
        else:
            await asyncio.to_thread(served.backend.load)
            loaded_models.set_keep_alive(served.backend, keep_alive)
            reason = "load"
        line: dict[str, Any] = {"model": body["model"], "created_at": now_rfc3339(),
                                "done": True, "done_reason": reason}
        if chat:
            line["message"] = {"role": "assistant", "content": ""}
        else:
            line["response"] = ""
        return JSONResponse(line)


def _merge_chat(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """One non-streamed chat answer from the streamed lines (tool calls merged)."""
    merged = dict(lines[-1])
    message: dict[str, Any] = {"role": "assistant",
                               "content": "".join(x["message"]["content"] for x in lines)}
    thinking = "".join(x["message"].get("thinking", "") for x in lines)
    if thinking:
        message["thinking"] = thinking
    calls = [c for x in lines for c in x["message"].get("tool_calls", [])]
    if calls:
        message["tool_calls"] = calls
    merged["message"] = message
    return merged


def _normalized(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


async def token_count(served: Served, texts: list[str]) -> int:
    """Tokens in ``texts`` by the model's tokenizer (0 where it cannot count)."""
    def count() -> int:
        try:
            return sum(served.backend.count_tokens(t) for t in texts)
        except Exception:
            return 0

    return await asyncio.to_thread(count)


def _details(source: Any, family: str | None, parameters: int | None,
             quantization: str | None) -> dict[str, Any]:
    return {
        "parent_model": "", "format": "gguf" if source.is_gguf else "safetensors",
        "family": family or "", "families": [family] if family else [],
        "parameter_size": _parameter_size(parameters),
        "quantization_level": quantization or "",
    }


def _parameter_size(parameters: int | None) -> str:
    if not parameters:
        return ""
    if parameters >= 1e9:
        return f"{parameters / 1e9:.1f}B"
    return f"{parameters / 1e6:.0f}M"


def _tag_entry(name: str, source: Any) -> dict[str, Any]:
    from pathlib import Path

    from adam_integrations.sharing.digest import file_sha256

    path = Path(source.location)
    size, digest = 0, ""
    if path.is_file():
        size, digest = path.stat().st_size, file_sha256(path)
    elif path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc) if path.exists() \
        else datetime.now(timezone.utc)
    return {"name": name, "model": name, "size": size, "digest": digest,
            "modified_at": modified.isoformat().replace("+00:00", "Z"),
            "details": _details(source, None, None, source.quantization)}
