"""The named Gradio endpoints /complete, /fill and /chat, called with gradio_client on the real app.

The app serves the shipped nano-starcoder. Calls are greedy with a fixed seed,
so a Gradio answer can be compared with the REST API's for the same input.
"""

from __future__ import annotations

import re

import httpx
import pytest

from playground.web.ui.chat_render import raw

gradio_client = pytest.importorskip("gradio_client")

pytestmark = pytest.mark.timeout(180)

MODEL = "nano-starcoder"
# max_new_tokens, temperature, top_p, top_k, repetition_penalty, stop text, seed text
GREEDY = (16, 0, 0.9, 0, 1.0, "", "7")


@pytest.fixture(scope="module")
def client(nano_server):
    # A read timeout shorter than Gradio's 15 s heartbeat period lets the client's heartbeat
    # stream end on its own; left open, it holds up the session server's shutdown by 10 s.
    client = gradio_client.Client(nano_server.url + "/", verbose=False,
                                  httpx_kwargs={"timeout": httpx.Timeout(60.0, read=8.0)})
    yield client
    client.close()


def returns(client, api_name: str, outputs: tuple) -> dict[str, object]:
    """Outputs by their labels in the endpoint's API description."""
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"][api_name]
    return {r["label"]: value for r, value in zip(info["returns"], outputs, strict=True)}


def stats_of(outputs: tuple) -> str:
    [stats] = [o for o in outputs if isinstance(o, str) and " · finish: " in o]
    return stats


def rest(url: str, **body) -> dict:
    body["params"] = {"max_new_tokens": 16, "temperature": 0, "repetition_penalty": 1.0, "seed": 7}
    response = httpx.post(url + "/api/generate", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_three_endpoints_are_named_with_the_documented_inputs(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/chat", "/fill", "/complete"} <= set(endpoints)
    params = ["model", "max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "stop", "seed",
              "probabilities"]
    names = {name: [p["parameter_name"] for p in endpoints[name]["parameters"]]
             for name in ("/chat", "/fill", "/complete")}
    assert names["/complete"] == ["prompt", *params, "candidates", "heal", "stop_loops"]
    assert names["/fill"] == ["code", "filename", *params, "candidates", "heal", "end_at_scope", "no_empty_fill",
                              "stop_loops", "repo_name", "files"]
    assert names["/chat"] == ["message", "history", "system_prompt", *params, "heal", "stop_loops"]


def test_complete_with_probabilities_and_candidates(client):
    max_new, _, top_p, top_k, repetition, stop, seed = GREEDY
    outputs = client.predict("def add(a, b):\n", MODEL, max_new, 0.9, top_p, top_k, repetition, stop, seed, True, 3,
                             api_name="/complete")
    html_parts = [o for o in outputs if isinstance(o, str) and ('class="tok' in o or 'class="cand"' in o)]
    assert any('class="tok' in o and "Probability of each token" in o for o in html_parts)
    [candidates] = [o for o in html_parts if 'class="cand"' in o]
    assert "most likely first" in candidates and candidates.count('data-action="apply"') >= 1


def test_complete_returns_the_prompt_and_its_continuation(client, nano_server):
    prompt = "def add(a, b):\n    "
    outputs = client.predict(prompt, MODEL, *GREEDY, api_name="/complete")
    result = returns(client, "/complete", outputs)["Prompt + continuation"]
    assert result.startswith(prompt) and len(result) > len(prompt)
    stats = stats_of(outputs)
    assert "16 tokens" in stats and "finish: length" in stats and "seed 7" in stats
    # A script shares what it generated through Gradio by the id in the stats line.
    generation_id = re.search(r"id ([\w-]+)", stats).group(1)
    share = httpx.post(nano_server.url + "/api/shares", json={"generation_id": generation_id})
    assert share.status_code == 201
    assert httpx.get(nano_server.url + f"/api/shares/{share.json()['id']}").json()["text"] == result[len(prompt):]
    # Same input, greedy, same seed: the REST API gives the same continuation.
    assert result == prompt + rest(nano_server.url, mode="complete", prompt=prompt)["text"]


def test_complete_honours_a_stop_sequence_typed_as_backslash_n(client):
    prompt = "import os\n\n\ndef list_python_files(root):\n"
    max_new, temperature, top_p, top_k, repetition, _, seed = GREEDY
    outputs = client.predict(prompt, MODEL, max_new, temperature, top_p, top_k, repetition, "\\n", seed,
                             api_name="/complete")
    result = returns(client, "/complete", outputs)["Prompt + continuation"]
    assert result.startswith(prompt) and "\n" not in result[len(prompt):]
    stats = stats_of(outputs)
    assert "finish: stop" in stats or "finish: length" in stats


def test_fill_returns_the_whole_code_with_indentation_intact(client, nano_server):
    prefix = "def fibonacci(n):\n    numbers = [0, 1]\n    "
    suffix = "\n    return numbers[:n]\n"
    code = prefix + "<FILL_HERE>" + suffix
    outputs = client.predict(code, "", MODEL, *GREEDY, api_name="/fill")
    named = returns(client, "/fill", outputs)
    result, middle = named["Result"], named["Generated middle"]
    assert result.startswith(prefix) and result.endswith(suffix)  # every space around the hole kept
    assert result == prefix + middle + suffix
    assert "<fim_" not in result and "<|endoftext|>" not in result and "<FILL_HERE>" not in result
    raw = named["Exactly what the model was given"]
    assert raw == "<fim_prefix><fim_suffix>" + suffix + "<fim_middle>" + prefix  # nano's entry: suffix first
    assert "finish: " in stats_of(outputs) and "seed 7" in stats_of(outputs)
    record = rest(nano_server.url, mode="fill", code=code)
    assert (record["text"], record["middle"]) == (result, middle)


def test_fill_with_a_filename_puts_it_in_the_prompt(client):
    code = "def add(a, b):\n    <FILL_HERE>\n"
    outputs = client.predict(code, "src/add.py", MODEL, *GREEDY, api_name="/fill")
    raw = returns(client, "/fill", outputs)["Exactly what the model was given"]
    assert raw == "<fim_prefix><fim_suffix>\n<fim_middle><filename>src/add.py\ndef add(a, b):\n    "


def test_chat_returns_the_history_with_the_assistants_reply_last(client, nano_playground):
    history = [{"role": "user", "content": [{"type": "text", "text": "hi"}]},  # Gradio 6 messages: content blocks
               {"role": "assistant", "content": [{"type": "text", "text": "Hello! How can I help?"}]}]
    question = "How do I reverse a list in Python?"
    chat_prompt = nano_playground.modes.named("chat").prompt.text
    outputs = client.predict(question, history, chat_prompt, MODEL, *GREEDY, api_name="/chat")
    messages = returns(client, "/chat", outputs)["Tech Assistant"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    # The view's Markdown (code kept as code, prose escaped); chat_render.raw reads it back as written.
    texts = [raw("".join(block["text"] for block in m["content"])) for m in messages]
    assert texts[:3] == ["hi", "Hello! How can I help?", question]
    assert "Human:" not in texts[-1] and "-----" not in texts[-1]
    stats = stats_of(outputs)
    assert "finish: " in stats and "example dialogues" in stats  # nano's context cannot hold the few-shot prompt
    [raw_prompt] = [o for o in outputs if isinstance(o, str) and o.endswith("Assistant:")]
    assert raw_prompt.endswith(f"Human: hi\n\nAssistant: Hello! How can I help?\n\nHuman: {question}\n\nAssistant:")


def test_fill_without_a_marker_is_an_error_naming_it(client):
    with pytest.raises(Exception, match="has no such marker") as caught:
        client.predict("def f():\n    pass\n", "", MODEL, *GREEDY, api_name="/fill")
    assert type(caught.value).__name__ == "AppError"
    assert "with <FILL_HERE>" in str(caught.value)  # API clients get the text as it is, not escaped for HTML


def test_two_markers_and_an_empty_prompt_are_errors_too(client):
    with pytest.raises(Exception, match="exactly one hole"):
        client.predict("<FILL_HERE>\n<FILL_HERE>\n", "", MODEL, *GREEDY, api_name="/fill")
    with pytest.raises(Exception, match="empty"):
        client.predict("", MODEL, *GREEDY, api_name="/complete")


def test_fill_takes_repository_context_as_a_listing(client, nano_server):
    max_new, _, top_p, top_k, repetition, stop, seed = GREEDY
    listing = "==> pkg/utils.py <==\ndef double(x):\n    return 2 * x\n"
    outputs = client.predict("y = <FILL_HERE>\n", "pkg/main.py", MODEL, max_new, 0, top_p, top_k, repetition, stop,
                             seed, False, 1, True, True, True, True, "me/app", listing, api_name="/fill")
    [budget] = [o for o in outputs if isinstance(o, str) and o.startswith("| part of the prompt")]
    assert "| file pkg/utils.py |" in budget and "all 2 lines" in budget
    with pytest.raises(Exception, match="==> path/to/file.py <=="):
        client.predict("y = <FILL_HERE>\n", "", MODEL, max_new, 0, top_p, top_k, repetition, stop, seed, False, 1,
                       True, True, True, True, "", "no header here", api_name="/fill")
