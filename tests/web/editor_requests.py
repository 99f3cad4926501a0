"""Editors' request bodies as their clients build them, one hole in them, for the editor-route tests.

None of these clients can run here (a VS Code extension, a Neovim plugin, a
Rust language server), so their bodies were transcribed from their source:
the fields, names and defaults they send, with our hole in them. Each says
the client, the version read and the file that builds the body.
``HOLE_PREFIX``/``HOLE_SUFFIX`` is the one hole every dialect is asked to fill.
"""

from __future__ import annotations

from typing import Any

HOLE_PREFIX = "def average(values):\n    total = 0\n    for value in values:\n        "
HOLE_SUFFIX = "\n    return total / len(values)\n\n\nprint(average([1, 2, 3]))\n"
STARCODER_PSM = f"<fim_prefix>{HOLE_PREFIX}<fim_suffix>{HOLE_SUFFIX}<fim_middle>"
CONTINUE_STOPS = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<|endoftext|>", "</fim_middle>",
                  "</code>"]

# llm-ls 0.5.3 (llm-vscode 0.2.2), crates/llm-ls/src/backend.rs, build_tgi_body: the user's request_body
# (llm-vscode's default "parameters") plus the templated prompt as "inputs".
LLM_LS_TGI: dict[str, Any] = {
    "inputs": STARCODER_PSM,
    "parameters": {"max_new_tokens": 60, "temperature": 0.2, "top_p": 0.95, "return_full_text": False},
}

# llm-ls 0.5.3, crates/llm-ls/src/backend.rs, build_openai_body: the same request_body, with the templated
# prompt, "model" and "stream": false; the TGI-style "parameters" ride along (an OpenAI server ignores them).
LLM_LS_OPENAI: dict[str, Any] = {
    "prompt": STARCODER_PSM, "model": "bigcode/starcoder", "stream": False,
    "parameters": {"max_new_tokens": 60, "temperature": 0.2, "top_p": 0.95},
}

# Continue 1.0 (VS Code), core/llm/llms/OpenAI.ts, _legacystreamComplete with the StarCoder template from
# core/autocomplete/templating/AutocompleteTemplate.ts: the client renders the template, streams, and sends
# the sentinels and <file_sep> as stops. It never sends "suffix" to /completions.
CONTINUE_OPENAI: dict[str, Any] = {
    "model": "starcoder", "prompt": STARCODER_PSM, "max_tokens": 256, "temperature": 0.01, "top_p": 1,
    "stop": CONTINUE_STOPS, "stream": True,
}

# Continue 1.0, core/llm/llms/Mistral.ts, _streamFim: providers with FIM support send prefix and suffix to
# /fim/completions and read choices[0].delta.content.
CONTINUE_FIM: dict[str, Any] = {
    "model": "codestral-latest", "prompt": HOLE_PREFIX, "suffix": HOLE_SUFFIX, "max_tokens": 256,
    "temperature": 0.01, "top_p": 1, "stop": ["\n\n\n"], "stream": True,
}

# llama.vim (ggml-org/llama.vim, 2025), autoload/llama.vim, s:fim: the cursor's line before the cursor is
# "prompt", the lines above "input_prefix"; ring-buffer chunks of other buffers ride in "input_extra".
LLAMA_VIM_PREFIX_LINES, LLAMA_VIM_LINE = HOLE_PREFIX.rsplit("\n", 1)
LLAMA_VIM: dict[str, Any] = {
    "input_prefix": LLAMA_VIM_PREFIX_LINES + "\n",
    "input_suffix": HOLE_SUFFIX,
    "input_extra": [],
    "prompt": LLAMA_VIM_LINE,
    "n_predict": 128,
    "stop": [],
    "n_indent": 8,
    "top_k": 40,
    "top_p": 0.90,
    "stream": False,
    "samplers": ["top_k", "top_p", "infill"],
    "cache_prompt": True,
    "t_max_prompt_ms": 500,
    "t_max_predict_ms": 1000,
    "response_fields": ["content", "timings/prompt_n", "timings/prompt_ms", "timings/predicted_n",
                        "timings/predicted_ms", "truncated", "tokens_cached"],
}
LLAMA_VIM_WARM: dict[str, Any] = {**LLAMA_VIM, "n_predict": 0, "samplers": [], "t_max_predict_ms": 1}
