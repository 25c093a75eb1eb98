"""Reranking (issue 42): Qwen3-Reranker's method on both in-process backends, checked
against the model card's reference computation on the Qwen3 fixture (the real Qwen
vocabulary and template, random weights: the scores say nothing of relevance, so the tests
compare engines and check the bookkeeping); order, ``top_n``, truncation and bad input."""

from __future__ import annotations

import pytest

from adam_integrations import InvalidRequestError, UnsupportedOperationError
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.core.errors import InvalidInputTypeError
from adam_integrations.core.rerank import ANSWER_START, DEFAULT_INSTRUCTION, JUDGE

QUERY = "What is the capital of China?"
DOCUMENTS = ["The capital of China is Beijing.",
             "Gravity is a force that attracts two bodies towards each other.",
             "Beijing has been the capital for centuries, through several dynasties.",
             "Bananas are yellow.", "北京是中国的首都。"]


def _reference_scores(folder, query: str, documents: list[str],
                      instruction: str = DEFAULT_INSTRUCTION) -> list[float]:
    """The Qwen3-Reranker model card's computation: prefix, pair and suffix tokenized
    apart, the batch padded on the left, softmax over the "no" and "yes" logits at the last
    position."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prefix = tokenizer.encode(f"<|im_start|>system\n{JUDGE}<|im_end|>\n<|im_start|>user\n",
                              add_special_tokens=False)
    suffix = tokenizer.encode(ANSWER_START, add_special_tokens=False)
    pairs = [f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
             for document in documents]
    encoded = tokenizer(pairs, padding=False, truncation="longest_first",
                        return_attention_mask=False, max_length=8192 - len(prefix) - len(suffix))
    encoded["input_ids"] = [prefix + ids + suffix for ids in encoded["input_ids"]]
    batch = tokenizer.pad(encoded, padding=True, return_tensors="pt")
    no, yes = tokenizer.convert_tokens_to_ids("no"), tokenizer.convert_tokens_to_ids("yes")
    with torch.inference_mode():
        last = model(**batch).logits[:, -1, :]
    pair = torch.log_softmax(torch.stack([last[:, no], last[:, yes]], dim=1), dim=1)
    return pair[:, 1].exp().tolist()


@pytest.fixture(scope="module")
def engines(qwen3):
    """The dense fixture on llama.cpp (its GGUF) and on transformers (its folder)."""
    models = {"llama.cpp": LlamaCppModel(str(qwen3.dense_gguf)),
              "transformers": HuggingFaceModel(str(qwen3.dense_folder), dtype="float32")}
    yield models
    for model in models.values():
        model.unload()


def _by_index(reranking) -> list[float]:
    return [r.relevance_score for r in sorted(reranking.results, key=lambda r: r.index)]


def test_both_backends_score_as_the_model_cards_reference_code(engines, qwen3):
    reference = _reference_scores(qwen3.dense_folder, QUERY, DOCUMENTS)
    assert max(reference) - min(reference) > 1e-3, reference  # the check can tell them apart
    for name, model in engines.items():
        scores = _by_index(model.rerank(QUERY, DOCUMENTS))
        assert scores == pytest.approx(reference, abs=1e-3), (name, scores, reference)
    instructed = _reference_scores(qwen3.dense_folder, QUERY, DOCUMENTS, "Find Chinese text")
    assert _by_index(engines["transformers"].rerank(
        QUERY, DOCUMENTS, instruction="Find Chinese text")) == pytest.approx(instructed,
                                                                              abs=1e-3)


def test_results_come_best_first_with_their_index_text_and_usage(engines):
    for model in engines.values():
        whole = model.rerank(QUERY, DOCUMENTS)
        scores = [r.relevance_score for r in whole.results]
        assert scores == sorted(scores, reverse=True)
        assert sorted(r.index for r in whole.results) == list(range(len(DOCUMENTS)))
        assert all(DOCUMENTS[r.index] == r.document for r in whole.results)
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert whole.prompt_tokens > len(DOCUMENTS) * 40 and whole.truncated == []
        top = model.rerank(QUERY, DOCUMENTS, top_n=2)
        assert [r.index for r in top.results] == [r.index for r in whole.results[:2]]
        every = model.rerank(QUERY, DOCUMENTS, top_n=50).results
        assert [(r.index, r.document) for r in every] == \
            [(r.index, r.document) for r in whole.results]


async def test_async_rerank_matches_sync(engines):
    model = engines["llama.cpp"]
    assert _by_index(await model.arerank(QUERY, DOCUMENTS)) == pytest.approx(
        _by_index(model.rerank(QUERY, DOCUMENTS)), abs=1e-6)


def test_a_document_longer_than_the_context_is_cut_and_reported(qwen3):
    model = LlamaCppModel(str(qwen3.dense_gguf), n_ctx=256, parallel=2)
    try:
        reranking = model.rerank(QUERY, ["short", "long " * 2000, "also short"])
        assert reranking.truncated == [1]
        assert len(reranking.results) == 3
    finally:
        model.unload()


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.rerank("", ["a"]), InvalidRequestError, "query is empty"),
    (lambda m: m.rerank("q", []), InvalidRequestError, "documents is empty"),
    (lambda m: m.rerank("q", "a document"), InvalidInputTypeError,
     "documents must be a list of strings"),
    (lambda m: m.rerank("q", ["a", 3]), InvalidInputTypeError, r"documents\[1\] is a int"),
    (lambda m: m.rerank("q", ["a"], top_n=0), InvalidRequestError, "top_n must be"),
    (lambda m: m.rerank("q", ["a"], top_n=1.5), InvalidRequestError, "top_n must be"),
    (lambda m: m.rerank(None, ["a"]), InvalidInputTypeError, "query must be a string"),
])
def test_bad_input_is_refused_naming_the_field(engines, call, error, message):
    with pytest.raises(error, match=message):
        call(engines["llama.cpp"])


def test_an_embedding_model_cannot_rerank(embedding_folder):
    model = HuggingFaceModel(str(embedding_folder))
    try:
        with pytest.raises(UnsupportedOperationError, match="embedding model"):
            model.rerank("q", ["a"])
    finally:
        model.unload()


def test_the_manager_reranks_with_its_rerank_model_and_explains_the_default(qwen3):
    from adam_integrations import ModelManager

    manager = ModelManager(model="smollm2", rerank_model=str(qwen3.dense_gguf))
    try:
        reranking = manager.rerank(QUERY, DOCUMENTS, top_n=3)
        assert len(reranking.results) == 3 and reranking.model
        assert "on llamacpp" in manager.rerank_explanation
    finally:
        manager.unload()
    default = ModelManager(model="smollm2")
    try:
        assert default.rerank(QUERY, DOCUMENTS[:2]).results
        assert "reranks by Qwen3-Reranker's method, weakly" in default.rerank_explanation
    finally:
        default.unload()


async def test_langchains_compressor_keeps_the_best_with_their_scores(qwen3):
    from langchain_core.documents import Document

    from adam_integrations.langchain import AdamReranker

    reranker = AdamReranker(model=str(qwen3.dense_gguf), top_n=2)
    documents = [Document(page_content=text, metadata={"n": i}, id=f"d{i}")
                 for i, text in enumerate(DOCUMENTS)]
    try:
        expected = reranker.manager.rerank(QUERY, DOCUMENTS, top_n=2).results
        kept = reranker.compress_documents(documents, QUERY)
        assert [d.metadata["n"] for d in kept] == [r.index for r in expected]
        assert [d.id for d in kept] == [f"d{r.index}" for r in expected]
        assert [d.metadata["relevance_score"] for d in kept] == pytest.approx(
            [r.relevance_score for r in expected], abs=1e-6)
        assert "relevance_score" not in documents[0].metadata  # copies, not changed
        again = await reranker.acompress_documents(documents, QUERY)
        assert [d.metadata["n"] for d in again] == [d.metadata["n"] for d in kept]
        assert reranker.compress_documents([], QUERY) == []
    finally:
        reranker.manager.unload()


async def test_llama_indexs_postprocessor_keeps_the_best_nodes_with_their_scores(qwen3):
    from llama_index.core.schema import NodeWithScore, TextNode

    from adam_integrations.llama_index import AdamRerank

    rerank = AdamRerank(model=str(qwen3.dense_gguf), top_n=2)
    nodes = [NodeWithScore(node=TextNode(text=text, id_=f"n{i}"), score=0.0)
             for i, text in enumerate(DOCUMENTS)]
    try:
        expected = rerank.manager.rerank(QUERY, DOCUMENTS, top_n=2).results
        kept = rerank.postprocess_nodes(nodes, query_str=QUERY)
        assert [n.node.id_ for n in kept] == [f"n{r.index}" for r in expected]
        assert [n.score for n in kept] == pytest.approx(
            [r.relevance_score for r in expected], abs=1e-6)
        again = await rerank.apostprocess_nodes(nodes, query_str=QUERY)
        assert [n.node.id_ for n in again] == [n.node.id_ for n in kept]
        assert rerank.postprocess_nodes([], query_str=QUERY) == []
        with pytest.raises(InvalidRequestError, match="needs the query"):
            rerank.postprocess_nodes(nodes)
    finally:
        rerank.manager.unload()
