"""LoRA adapters served unmerged (issue 41): a PEFT adapter from ``adam tune`` on the
transformers backend (PEFT) and, converted once to a GGUF LoRA adapter, on llama.cpp, with
the same scores; through ``ModelManager``, ``ChatAdam`` and ``AdamLLM``; an adapter made
for another model refused naming both. On the tiny random-weight Llama (its GGUF written
by ``adam convert``'s writer) and on the embedded Q4_1 SmolLM2 with an adapter trained on
its dequantized checkpoint."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from adam_integrations import InvalidRequestError, ModelManager
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.sharing.adapter_gguf import adapter_for_gguf
from adam_integrations.sharing.checkpoint_gguf import write_gguf
from adam_integrations.tools import tune
from tests.fixtures.tiny_models import tiny_llama

PROMPT = "user\nAdd 3 and 3.\nassistant\nArr! 3 and 3 make 6."
"""Scored on both engines (no special tokens: llama.cpp's prompt scoring reads them as
text, transformers' tokenizer as control tokens)."""
TRAINING = {"max_steps": 8, "rank": 8, "learning_rate": 3e-2, "batch_size": 4,
            "max_length": 64, "progress": False}


@pytest.fixture(scope="module")
def tiny_parts(tmp_path_factory, smollm2_checkpoint) -> tuple[Path, Path, Path]:
    """The tiny checkpoint, its F32 GGUF, and an adapter trained on it."""
    root = tmp_path_factory.mktemp("adapters")
    folder = tiny_llama(root / "tiny-llama", smollm2_checkpoint)
    gguf = root / "tiny-llama.gguf"
    write_gguf(folder, gguf, "F32")
    data = root / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"Add {i} and {i}."},
        {"role": "assistant", "content": f"Arr! {i} and {i} make {2 * i}."}]}) + "\n"
        for i in range(16)), encoding="utf-8")
    adapter = tune(folder, data, output=root / "adapter", **TRAINING).path
    return folder, gguf, adapter


def _scores(model, prompt: str = PROMPT) -> list[float]:
    try:
        return [t.logprob for t in model.score_prompt(prompt)[1:]]
    finally:
        model.unload()


def _mean_gap(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def test_the_gguf_adapter_on_llamacpp_scores_as_peft_does_on_transformers(tiny_parts):
    folder, gguf, adapter = tiny_parts
    peft = _scores(HuggingFaceModel(str(folder), adapters=[adapter], dtype="float32"))
    llamacpp = _scores(LlamaCppModel(str(gguf), adapters=[adapter]))
    base = _scores(LlamaCppModel(str(gguf)))
    assert _mean_gap(peft, llamacpp) < 0.01  # the same model, on two engines
    assert _mean_gap(base, llamacpp) > 0.3  # and the adapter changed it
    assert sum(llamacpp) > sum(base)  # towards the data it learnt


def test_a_qwen3_adapter_on_llamacpp_scores_as_peft_does_on_transformers(qwen3, tmp_path,
                                                                        monkeypatch):
    """Beyond Llama: Qwen3's layout (NeoX RoPE rows kept as they are, q/k norms untouched)
    on the Qwen3 fixture, its transformers folder and GGUF of the same weights; the
    adapter named ``hf:org/repo`` from the Hugging Face cache on llama.cpp."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(qwen3.dense_folder, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                        init_lora_weights=False)  # random A and B: the adapter does something
    adapter = tmp_path / "adapter"
    get_peft_model(model, config).save_pretrained(adapter)
    snapshot = tmp_path / "hub" / "models--me--qwen3-lora" / "snapshots" / ("0" * 40)
    shutil.copytree(adapter, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    text = "Qwen3 reads this sentence on two engines with one adapter."
    peft = _scores(HuggingFaceModel(str(qwen3.dense_folder), adapters=[adapter],
                                    dtype="float32"), text)
    llamacpp = _scores(LlamaCppModel(str(qwen3.dense_gguf), adapters=["hf:me/qwen3-lora"]),
                       text)
    base = _scores(LlamaCppModel(str(qwen3.dense_gguf)), text)
    assert _mean_gap(peft, llamacpp) < _mean_gap(base, llamacpp) / 20, (
        _mean_gap(peft, llamacpp), _mean_gap(base, llamacpp))


def test_a_peft_folder_is_converted_once_and_a_gguf_adapter_is_taken_as_it_is(tiny_parts):
    _, gguf, adapter = tiny_parts
    header = read_gguf_header(gguf)
    converted = adapter_for_gguf(adapter, header, gguf)
    written = converted.stat().st_mtime_ns
    assert adapter_for_gguf(adapter, header, gguf) == converted
    assert converted.stat().st_mtime_ns == written
    meta = read_gguf_header(converted).metadata
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == 16.0  # twice the rank, adam tune's default
    assert adapter_for_gguf(converted, header, gguf) == converted  # a GGUF adapter as is
    full = _scores(LlamaCppModel(str(gguf), adapters=[adapter]))
    assert _scores(LlamaCppModel(str(gguf), adapters=[converted])) == full
    half = _scores(LlamaCppModel(str(gguf), adapters=[(adapter, 0.5)]))
    base = _scores(LlamaCppModel(str(gguf)))
    assert _mean_gap(half, full) > 0.05 and _mean_gap(half, base) > 0.05  # scaled
    peft_half = _scores(HuggingFaceModel(str(tiny_parts[0]), adapters=[(adapter, 0.5)],
                                         dtype="float32"))
    assert _mean_gap(peft_half, half) < 0.01  # the same scale on both engines


def test_an_adapter_for_another_model_is_refused_naming_both(tiny_parts, chat_gguf_path):
    _, gguf, adapter = tiny_parts
    with pytest.raises(InvalidRequestError, match=r"adapter .*adapter was made for another "
                                                  r"model than .*SmolLM2.*576 x 1536"):
        LlamaCppModel(str(chat_gguf_path), adapters=[adapter]).load()
    with pytest.raises(InvalidRequestError, match=r"made for another model than SmolLM2"):
        HuggingFaceModel(str(chat_gguf_path), adapters=[adapter]).load()
    converted = adapter_for_gguf(adapter, read_gguf_header(gguf), gguf)
    with pytest.raises(InvalidRequestError, match=r"was made for another model"):
        LlamaCppModel(str(chat_gguf_path), adapters=[converted]).load()
    with pytest.raises(InvalidRequestError, match="the transformers backend loads PEFT"):
        HuggingFaceModel(str(gguf), adapters=[converted]).load()
    with pytest.raises(InvalidRequestError, match="no adapter at"):
        LlamaCppModel(str(gguf), adapters=["/no/such/adapter"])
    with pytest.raises(InvalidRequestError, match="is a GGUF model, not a LoRA adapter"):
        LlamaCppModel(str(gguf), adapters=[gguf]).load()


def test_the_manager_and_both_frameworks_take_adapters(tiny_parts):
    from adam_integrations.langchain import ChatAdam
    from adam_integrations.llama_index import AdamLLM

    _, gguf, adapter = tiny_parts
    with pytest.raises(InvalidRequestError, match="no adapter at"):
        ModelManager(model=str(gguf), adapters=["/no/such/adapter"])
    manager = ModelManager(model=str(gguf), adapters=[str(adapter)])
    plain = ModelManager(model=str(gguf))
    try:
        ask = [{"role": "user", "content": "Add 5 and 5."}]
        tuned = manager.chat(ask, max_tokens=8, temperature=0.0).text
        assert tuned != plain.chat(ask, max_tokens=8, temperature=0.0).text
        chat = ChatAdam(model=str(gguf), adapters=[str(adapter)], temperature=0.0,
                        max_tokens=8)
        assert chat.invoke("Add 5 and 5.").content == tuned
        llm = AdamLLM(model=str(gguf), adapters=[str(adapter)], temperature=0.0,
                      max_tokens=8)
        assert llm.chat([_llama_index_user("Add 5 and 5.")]).message.content == tuned
    finally:
        manager.unload()
        plain.unload()


def _greedy_answers(gguf: Path, adapter: Path, ask: list[dict]) -> tuple[str, str]:
    """The greedy answers with the adapter and without it, on llama.cpp in-process."""
    alone, plain = LlamaCppModel(str(gguf), adapters=[adapter]), LlamaCppModel(str(gguf))
    try:
        return (alone.chat(ask, max_tokens=12, temperature=0.0).text,
                plain.chat(ask, max_tokens=12, temperature=0.0).text)
    finally:
        alone.unload()
        plain.unload()


def _llama_index_user(text: str):
    from llama_index.core.llms import ChatMessage

    return ChatMessage(role="user", content=text)


def test_an_adapter_trained_on_the_checkpoint_applies_to_the_embedded_q4_1_gguf(
        chat_gguf_path, tmp_path):
    data = tmp_path / "pirate.jsonl"
    data.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"What is {i} plus {i}?"},
        {"role": "assistant", "content": f"Arr, {2 * i} it be!"}]}) + "\n"
        for i in range(4)), encoding="utf-8")
    done = tune(chat_gguf_path, data, output=tmp_path / "pirate", max_steps=2, rank=4,
                learning_rate=5e-3, batch_size=2, max_length=48, progress=False)
    assert done.base_gguf == chat_gguf_path
    prompt = "user\nWhat is 9 plus 9?\nassistant\nArr, 18 it be!"
    quantized = _scores(LlamaCppModel(str(chat_gguf_path), adapters=[done.path]), prompt)
    peft = _scores(HuggingFaceModel(str(chat_gguf_path), adapters=[done.path],
                                    dtype="float32"), prompt)
    base = _scores(LlamaCppModel(str(chat_gguf_path)), prompt)
    # Q4_1 against float32 weights differ a little; the adapter moves both alike
    assert _mean_gap(peft, quantized) < _mean_gap(base, quantized) / 3
    assert math.fsum(quantized) > math.fsum(base)


@pytest.mark.parametrize("backend", ["llamacpp", "huggingface"])
def test_each_request_chooses_its_adapters_and_concurrent_ones_do_not_mix(tiny_parts,
                                                                         backend):
    from concurrent.futures import ThreadPoolExecutor

    folder, gguf, adapter = tiny_parts

    def model(adapters=(), **options):
        if backend == "llamacpp":
            return LlamaCppModel(str(gguf), adapters=list(adapters), **options)
        return HuggingFaceModel(str(folder), adapters=list(adapters), dtype="float32",
                                **options)

    both, alone, plain = model([adapter], parallel=4), model([adapter]), model()
    half = model([(adapter, 0.5)])
    ask = [{"role": "user", "content": "Add 7 and 7."}]
    try:
        tuned = alone.chat(ask, max_tokens=12, temperature=0.0).text
        base = plain.chat(ask, max_tokens=12, temperature=0.0).text
        assert tuned != base
        assert both.chat(ask, max_tokens=12, temperature=0.0, lora=[]).text == base
        assert both.chat(ask, max_tokens=12, temperature=0.0,
                         lora=[{"id": 0, "scale": 1.0}]).text == tuned
        assert both.chat(ask, max_tokens=12, temperature=0.0, lora=[(0, 0.5)]).text == \
            half.chat(ask, max_tokens=12, temperature=0.0).text  # the scale is the request's
        choices = [[], [(0, 1.0)]] * 4
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda lora: both.chat(
                ask, max_tokens=12, temperature=0.0, lora=lora).text, choices))
        assert answers == [base, tuned] * 4  # each with its own adapters, in one engine
        assert both.chat(ask, max_tokens=12, temperature=0.0).text == tuned  # the default
        with pytest.raises(InvalidRequestError, match=r"lora adapter 3 does not exist: "
                                                      r"this model has 1 adapters"):
            both.chat(ask, max_tokens=2, lora=[{"id": 3}])
        with pytest.raises(InvalidRequestError, match=r"lora adapter 0 is listed twice"):
            both.chat(ask, max_tokens=2, lora=[(0, 1.0), (0, 0.5)])
    finally:
        for each in (both, alone, plain, half):
            each.unload()


def test_adam_serve_serves_each_lora_as_a_model_and_takes_per_request_lora(tiny_parts,
                                                                         tmp_path):
    import subprocess
    import sys

    import openai

    from tests.integration.conftest import ServeProcess

    _, gguf, adapter = tiny_parts
    ask = [{"role": "user", "content": "Add 7 and 7."}]
    tuned, base = _greedy_answers(gguf, adapter, ask)
    running = ServeProcess(tmp_path / "serve.log", "--model", f"tiny={gguf}", "--lora",
                           f"pirate={adapter}", "--lora", f"pirate2={adapter}")
    try:
        client = openai.OpenAI(base_url=f"{running.url}/v1", api_key="none")
        listed = {m.id for m in client.models.list()}
        assert {"tiny:latest", "pirate:latest", "pirate2:latest"} <= listed, listed

        def answer(model: str, **extra) -> str:
            reply = client.chat.completions.create(model=model, messages=ask, max_tokens=12,
                                                   temperature=0.0, extra_body=extra)
            return reply.choices[0].message.content

        assert answer("pirate") == tuned and answer("pirate2") == tuned
        assert answer("tiny") == base  # the base without its adapters
        assert answer("tiny", lora=[{"id": 0, "scale": 1.0}]) == tuned  # llama-server's
        assert answer("pirate", lora=[]) == base
        completions = [client.completions.create(
            model="tiny", prompt="Add 7 and 7.", max_tokens=6, temperature=0.0,
            extra_body={"lora": lora}).choices[0].text for lora in ([], [{"id": 1}])]
        assert completions[0] != completions[1]  # /v1/completions takes it too
        with pytest.raises(openai.BadRequestError, match="lora adapter 5 does not exist"):
            client.completions.create(model="tiny", prompt="Add", max_tokens=2,
                                      extra_body={"lora": [{"id": 5}]})
        with pytest.raises(openai.BadRequestError, match="lora"):
            answer("tiny", lora=[{"id": -1}])
    finally:
        running.stop()
    for bad, message in ((f"x={tmp_path / 'missing'}", "no adapter at"),
                         ("x=" + str(adapter), "made for another model")):
        failed = subprocess.run(
            [sys.executable, "-m", "adam_integrations.cli", "serve", "--port", "1",
             "--model", "base=smollm2", "--lora", bad], capture_output=True, text=True,
            timeout=120)
        assert failed.returncode != 0 and message in failed.stderr, failed.stderr[-2000:]


def test_adam_serve_lora_on_a_checkpoint_serves_the_base_and_each_adapter(tiny_parts,
                                                                         tmp_path):
    import openai

    from tests.integration.conftest import ServeProcess

    folder, _, adapter = tiny_parts
    ask = [{"role": "user", "content": "Add 7 and 7."}]
    answers = []
    for adapters in ([adapter], []):  # on transformers, in-process
        model = HuggingFaceModel(str(folder), adapters=adapters)  # as adam serve loads it
        answers.append(model.chat(ask, max_tokens=12, temperature=0.0).text)
        model.unload()
    tuned, base = answers
    assert tuned != base
    running = ServeProcess(tmp_path / "serve.log", "--model", f"tiny={folder}", "--lora",
                           f"pirate={adapter}")
    try:
        client = openai.OpenAI(base_url=f"{running.url}/v1", api_key="none")

        def answer(model: str, **extra) -> str:
            reply = client.chat.completions.create(model=model, messages=ask, max_tokens=12,
                                                   temperature=0.0, extra_body=extra)
            return reply.choices[0].message.content

        assert answer("pirate") == tuned and answer("tiny") == base  # one load, both names
        assert answer("tiny", lora=[{"id": 0, "scale": 1.0}]) == tuned
    finally:
        running.stop()


def test_adapter_in_a_modelfile_and_on_api_create_through_the_ollama_client(tiny_parts,
                                                                             tmp_path):
    import ollama

    from adam_integrations.cli import main
    from adam_integrations.core.stores.ollama_store import model_layers
    from tests.integration.conftest import ServeProcess

    _, gguf, adapter = tiny_parts
    store, cache = tmp_path / "store", tmp_path / "cache"
    store.mkdir()
    ask = [{"role": "user", "content": "Add 7 and 7."}]
    tuned, base = _greedy_answers(gguf, adapter, ask)
    running = ServeProcess(tmp_path / "serve.log", env={"OLLAMA_MODELS": str(store),
                                                         "ADAM_CACHE_DIR": str(cache)})
    try:
        client = ollama.Client(host=running.url)
        model_blob = client.create_blob(gguf)
        # a PEFT adapter's two files, uploaded as ollama create uploads an adapter folder
        peft = {name: client.create_blob(adapter / name)
                for name in ("adapter_config.json", "adapter_model.safetensors")}
        statuses = [p.status for p in client.create(
            model="pirate", files={"tiny.gguf": model_blob}, adapters=peft, stream=True)]
        assert statuses[-1] == "success"
        assert len(model_layers("pirate", roots=[store]).adapters) == 1
        options = {"temperature": 0, "num_predict": 12}
        assert client.chat(model="pirate", messages=ask,
                           options=options).message.content == tuned
        shown = client.show("pirate")
        assert shown.modelinfo["adam.adapters"] and shown.modelinfo["adam.base"]
        # a model made from it keeps its adapter; a GGUF adapter uploaded as one file
        converted = adapter_for_gguf(adapter, read_gguf_header(gguf), gguf)
        client.create(model="pirate2", files={"tiny.gguf": model_blob},
                      adapters={"pirate.gguf": client.create_blob(converted)})
        client.create(model="pirate3", from_="pirate", system="Be brief.")
        assert client.chat(model="pirate2", messages=ask,
                           options=options).message.content == tuned
        assert len(model_layers("pirate3", roots=[store]).adapters) == 1
        client.create(model="plain", files={"tiny.gguf": model_blob})
        assert client.chat(model="plain", messages=ask,
                           options=options).message.content == base
        with pytest.raises(ollama.ResponseError, match="adapters must be one GGUF"):
            client.create(model="bad", files={"tiny.gguf": model_blob},
                          adapters={"notes.txt": model_blob})
    finally:
        running.stop()
    # adam create -f Modelfile with ADAPTER (a PEFT folder, relative to the Modelfile),
    # answered by a ModelManager
    import os
    from unittest import mock

    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {gguf}\nADAPTER {os.path.relpath(adapter, tmp_path)}\n",
                         encoding="utf-8")
    with mock.patch.dict(os.environ, {"OLLAMA_MODELS": str(store),
                                      "ADAM_CACHE_DIR": str(cache)}):
        assert main(["create", "cli-pirate", "-f", str(modelfile)]) == 0
        manager = ModelManager(model="ollama:cli-pirate", model_type="llamacpp")
        try:
            assert manager.chat(ask, max_tokens=12, temperature=0.0).text == tuned
        finally:
            manager.unload()


def test_merge_writes_a_checkpoint_that_scores_as_the_adapter_and_goes_into_ollama(
        tiny_parts, tmp_path):
    from unittest import mock

    from adam_integrations.cli import main
    from adam_integrations.tools import merge

    folder, _, adapter = tiny_parts
    done = merge(folder, adapter, output=tmp_path / "merged", progress=False)
    assert (done.path / "model.safetensors").is_file() and done.path == tmp_path / "merged"
    merged = _scores(HuggingFaceModel(str(done.path), dtype="float32"))
    peft = _scores(HuggingFaceModel(str(folder), adapters=[adapter], dtype="float32"))
    assert _mean_gap(merged, peft) < 1e-3
    # converted, it runs on llama.cpp as the adapter does there
    gguf = tmp_path / "merged.gguf"
    write_gguf(done.path, gguf, "F32")
    assert _mean_gap(_scores(LlamaCppModel(str(gguf))), peft) < 0.01
    store = tmp_path / "store"
    with mock.patch.dict("os.environ", {"OLLAMA_MODELS": str(store)}):
        assert main(["merge", str(folder), str(adapter), "--name", "merged-pirate"]) == 0
        assert (store / "manifests" / "registry.ollama.ai" / "library" / "merged-pirate"
                / "latest").is_file()
    with pytest.raises(InvalidRequestError, match="already exists"):
        merge(folder, adapter, output=tmp_path / "merged", progress=False)
    with pytest.raises(InvalidRequestError, match="made for another model"):
        merge("smollm2", adapter, output=tmp_path / "wrong", progress=False)
    assert not (tmp_path / "wrong").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".merge")]
