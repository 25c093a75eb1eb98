"""AdamLLM and AdamEmbedding in LlamaIndex: RAG, ingestion, agents, structured output."""

from __future__ import annotations

import json

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import ChatMessage
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from adam_integrations import ModelManager
from adam_integrations.core.backend import ModelBackend
from adam_integrations.core.output import ResponseParser, merge_chunks
from adam_integrations.core.registry import registry
from adam_integrations.core.types import ModelInfo, Usage
from adam_integrations.llama_index import AdamEmbedding, AdamLLM
from tests.helpers import cancel_after_first_item, idle_soon

DOCUMENTS = [
    Document(text="The secret code word of the Adam project is PINEAPPLE.",
             metadata={"source": "secrets.txt"}),
    Document(text="Paris is the capital of France.", metadata={"source": "geo.txt"}),
    Document(text="Python 3.12 added the type statement.", metadata={"source": "py.txt"}),
]
QUESTION = "What is the secret code word of the Adam project?"


@pytest.fixture(scope="module")
def llm(manager) -> AdamLLM:
    return AdamLLM(model="smollm2", temperature=0.0, max_tokens=160)


@pytest.fixture(scope="module")
def index(manager) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(DOCUMENTS, embed_model=AdamEmbedding())


def test_metadata_comes_from_the_real_model(llm):
    metadata = llm.metadata
    assert (metadata.context_window, metadata.num_output) == (8192, 160)
    assert metadata.is_chat_model and metadata.is_function_calling_model


def test_llm_and_embedding_share_the_loaded_models_with_other_objects(manager, llm):
    assert llm.manager.backend is manager.backend
    assert AdamEmbedding().manager.embedder is manager.embedder


def test_a_query_engine_answers_from_the_documents_with_sources(index, llm):
    response = index.as_query_engine(llm=llm, similarity_top_k=1).query(QUESTION)
    assert "PINEAPPLE" in str(response).upper()
    assert response.source_nodes[0].node.metadata["source"] == "secrets.txt"


def test_a_streaming_query_engine_streams_the_same_answer(index, llm):
    engine = index.as_query_engine(llm=llm, similarity_top_k=1, streaming=True)
    response = engine.query(QUESTION)
    pieces = list(response.response_gen)
    assert len(pieces) > 1 and "PINEAPPLE" in "".join(pieces).upper()


async def test_an_async_query_engine_answers_too(index, llm):
    response = await index.as_query_engine(llm=llm, similarity_top_k=1).aquery(QUESTION)
    assert "PINEAPPLE" in str(response).upper()


def test_settings_llm_and_embed_model_are_used_by_default(llm):
    previous = Settings._llm, Settings._embed_model
    try:
        Settings.llm, Settings.embed_model = llm, AdamEmbedding()
        engine = VectorStoreIndex.from_documents(DOCUMENTS).as_query_engine(similarity_top_k=1)
        assert "PINEAPPLE" in str(engine.query(QUESTION)).upper()
    finally:
        Settings._llm, Settings._embed_model = previous


def test_an_ingestion_pipeline_embeds_every_node(manager):
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64,
                                                                   chunk_overlap=0),
                                                  AdamEmbedding()])
    nodes = pipeline.run(documents=[Document(text="Local models are useful. " * 40)])
    assert len(nodes) > 1 and all(len(n.embedding) == 384 for n in nodes)


def test_text_embeddings_are_computed_in_one_batched_call(manager):
    embedding = AdamEmbedding()
    calls = []
    original = embedding._manager.batch_embed

    def spy(texts, **kwargs):
        calls.append(len(texts))
        return original(texts, **kwargs)

    embedding._manager.batch_embed = spy
    try:
        vectors = embedding.get_text_embedding_batch([f"text {i}" for i in range(100)])
    finally:
        del embedding._manager.batch_embed
    assert calls == [100] and len(vectors) == 100


async def test_async_embeddings_equal_sync_ones(manager):
    embedding = AdamEmbedding()
    texts = ["one", "two"]
    assert await embedding.aget_text_embedding_batch(texts) == embedding.get_text_embedding_batch(
        texts)
    assert await embedding.aget_query_embedding("q") == embedding.get_query_embedding("q")


def test_instructions_prefix_queries_and_texts(manager):
    embedding = AdamEmbedding(query_instruction="query: ", text_instruction="passage: ")
    plain = AdamEmbedding()
    assert embedding.get_query_embedding("x") == pytest.approx(
        plain.get_text_embedding("query: x"), abs=1e-6)
    assert embedding.get_text_embedding("y") == pytest.approx(
        plain.get_text_embedding("passage: y"), abs=1e-6)


class Movie(BaseModel):
    title: str
    year: int


def test_structured_predict_returns_a_valid_pydantic_object(llm):
    movie = llm.structured_predict(Movie, PromptTemplate("Describe the movie {title}."),
                                   title="Alien")
    assert isinstance(movie, Movie)


async def test_astructured_predict_and_as_structured_llm(llm):
    movie = await llm.astructured_predict(Movie, PromptTemplate("Describe {title}."),
                                          title="Jaws")
    assert isinstance(movie, Movie)
    structured = llm.as_structured_llm(Movie)
    response = structured.chat([ChatMessage(role="user", content="Describe Alien.")])
    assert isinstance(response.raw, Movie)


def test_stream_structured_predict_grows_partial_objects_into_a_valid_one(llm):
    objects = list(llm.stream_structured_predict(Movie, PromptTemplate("Describe {t}."),
                                                 t="Alien"))
    assert len(objects) > 2 and isinstance(objects[-1], Movie)
    assert not isinstance(objects[0], Movie)  # a partial (flexible) object first


async def test_astream_structured_predict_ends_in_a_valid_object(llm):
    objects = [o async for o in await llm.astream_structured_predict(
        Movie, PromptTemplate("Describe {t}."), t="Jaws")]
    assert isinstance(objects[-1], Movie)


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return json.dumps({"city": city, "sky": "sunny", "celsius": 21})


def test_a_required_tool_call_is_a_valid_tool_selection(llm):
    tool = FunctionTool.from_defaults(get_weather)
    response = llm.chat_with_tools([tool], user_msg="Weather in Paris?", tool_required=True)
    (selection,) = llm.get_tool_calls_from_response(response)
    assert selection.tool_name == "get_weather" and isinstance(selection.tool_kwargs["city"], str)
    with pytest.raises(ValueError, match="expected at least one tool call"):
        llm.get_tool_calls_from_response(llm.chat([ChatMessage(role="user", content="Hi")]))


async def test_a_function_agent_calls_its_tool_and_finishes(llm):
    calls = []

    def weather(city: str) -> str:
        """Current weather in a city."""
        calls.append(city)
        return get_weather(city)

    # The 135M model never picks a tool by itself ("auto"); force the first step.
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(weather)], llm=llm,
                          initial_tool_choice="weather")
    result = await agent.run("What is the weather in Paris?")
    assert calls and str(result).strip()


def test_thinking_per_call_wins_over_the_instance(llm):
    thinker = AdamLLM(model="smollm2", thinking=True)
    assert thinker._config({"thinking": False}).think is False
    assert thinker._config({}).think is True


class ScriptedThinker(ModelBackend):
    """A backend that 'generates' a fixed thinking model output, through the real parser:
    hand-built output, as the embedded model does not think."""

    name = "scripted-thinker"
    OUTPUT = "<think>\nThe user asks for the code word. It is in the context.\n</think>\n\n" \
             "The code word is PINEAPPLE."

    def __init__(self, source, **options) -> None:
        self.source = source
        self._loaded = False

    def load(self) -> None:
        self._loaded = True

    def unload(self) -> None:
        self._loaded = False

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def info(self) -> ModelInfo:
        return ModelInfo(name="scripted", backend=self.name, context_window=4096)

    def _stream_chat(self, messages, config):
        parser = ResponseParser()
        for index in range(0, len(self.OUTPUT), 3):
            piece = merge_chunks(parser.push(self.OUTPUT[index:index + 3]))
            if not piece.empty:
                yield piece
        last = merge_chunks(parser.finish())
        last.finish_reason, last.usage = "stop", Usage(completion_tokens=20)
        yield last

    def _stream_complete(self, prompt, config, suffix=None):
        return self._stream_chat([], config)

    def _embed(self, texts, kind):
        raise NotImplementedError


def test_thinking_never_appears_in_a_query_engines_answer(index):
    registry.register("scripted-thinker", ScriptedThinker)
    thinker = AdamLLM(manager=ModelManager(model_type="scripted-thinker"))
    response = index.as_query_engine(llm=thinker, similarity_top_k=1).query(QUESTION)
    assert str(response) == "The code word is PINEAPPLE."
    streamed = index.as_query_engine(llm=thinker, similarity_top_k=1, streaming=True).query(
        QUESTION)
    assert "".join(streamed.response_gen) == "The code word is PINEAPPLE."
    chat = thinker.chat([ChatMessage(role="user", content="hi")])
    assert chat.message.content == "The code word is PINEAPPLE."
    assert "code word" in chat.message.blocks[0].content  # the ThinkingBlock


async def test_cancelling_an_async_stream_chat_stops_generation(manager):
    long = AdamLLM(model="smollm2", temperature=0.0, max_tokens=400)

    async def stream():
        responses = await long.astream_chat([ChatMessage(role="user",
                                                         content="Tell a very long story.")])
        async for response in responses:
            yield response

    await cancel_after_first_item(stream)
    assert await idle_soon(long._manager.backend)
