"""Loading: placement plans with simulated GPUs, real loads of nano-starcoder, and every error path."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch
from transformers import GPTBigCodeConfig

from playground.config import Settings
from playground.config_types import DeviceMap
from playground.errors import ConfigError, QuantizationUnavailableError, UnknownModelError
from playground.loading import choose_dtype, load_model, plan_placement, quantization_config
from playground.registry import resolve_source
from support.servers import free_port
from tests.conftest import REPO

STARCODER = GPTBigCodeConfig(
    n_layer=40, n_embd=6144, n_head=48, n_inner=24576, n_positions=8192, vocab_size=49152,
    multi_query=True, activation_function="gelu", bos_token_id=0, eos_token_id=0,
)


def test_starcoder_over_four_10gib_gpus_spreads_40_whole_blocks():
    plan = plan_placement(STARCODER, dtype=torch.bfloat16, strategy=DeviceMap("auto"),
                          max_memory={"0": "10GiB", "1": "10GiB", "2": "10GiB", "3": "10GiB", "cpu": "64GiB"})
    assert set(plan.blocks) == {"cuda:0", "cuda:1", "cuda:2", "cuda:3"}
    assert sorted(b for blocks in plan.blocks.values() for b in blocks) == list(range(40))
    assert plan.split_blocks == ()
    assert all(size <= 10 * 2**30 for size in plan.bytes_per_device.values())
    assert 30e9 < plan.total_bytes < 32e9  # ~15.5B params x 2 bytes in bf16
    assert "cuda:3: blocks" in plan.summary()


def test_sequential_fills_the_first_gpu_first():
    plan = plan_placement(STARCODER, dtype=torch.bfloat16, strategy=DeviceMap("sequential"),
                          max_memory={"0": "20GiB", "1": "20GiB", "cpu": "64GiB"})
    assert len(plan.blocks["cuda:0"]) > len(plan.blocks["cuda:1"])
    assert plan.blocks["cuda:0"][0] == 0 and plan.blocks["cuda:1"][-1] == 39


def test_too_little_gpu_memory_spills_blocks_to_cpu():
    plan = plan_placement(STARCODER, dtype=torch.bfloat16, strategy=DeviceMap("sequential"),
                          max_memory={"0": "10GiB", "cpu": "64GiB"})
    assert plan.blocks.get("cpu") and plan.blocks.get("cuda:0")


def test_quantized_plans_shrink():
    full = plan_placement(STARCODER, dtype=torch.bfloat16, strategy=DeviceMap("sequential"), max_memory={"0": "80GiB"})
    eight = plan_placement(STARCODER, dtype=torch.bfloat16, strategy=DeviceMap("sequential"), max_memory={"0": "80GiB"}, quantize="8bit")
    assert eight.total_bytes < 0.6 * full.total_bytes


def test_explicit_json_device_map_is_reported_per_device(nano):
    mapping = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.h.0": 0, "transformer.h.1": 0,
               "transformer.h.2": 1, "transformer.h.3": 1, "transformer.ln_f": 1, "lm_head": 1}
    plan = plan_placement(nano.model.config, dtype=torch.float32, strategy=DeviceMap(mapping=mapping))
    assert plan.blocks == {"cuda:0": [0, 1], "cuda:1": [2, 3]}


def test_dtype_choice():
    assert choose_dtype("auto", cuda=False) == torch.float32
    assert choose_dtype("bfloat16", cuda=False) == torch.bfloat16


def test_quantization_needs_cuda_then_bitsandbytes():
    with pytest.raises(QuantizationUnavailableError, match="needs a CUDA GPU"):
        quantization_config("8bit", torch.bfloat16, cuda=False)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(QuantizationUnavailableError, match="pip install bitsandbytes"):
            quantization_config("4bit", torch.bfloat16, cuda=True)


def test_gpu_device_map_on_a_cpu_machine_is_a_clear_error(registry):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    settings = Settings(device_map=DeviceMap("auto"), max_memory={"0": "10GiB"})
    with pytest.raises(ConfigError, match="no CUDA device"):
        load_model("nano-starcoder", registry, settings)


def test_unknown_model_names_the_choices(registry):
    with pytest.raises(UnknownModelError, match="nano-starcoder"):
        resolve_source("no such model!", registry)


def test_nano_loads_with_its_registry_facts(nano):
    assert nano.spec.id == "nano-starcoder"
    assert nano.model.config.n_positions == nano.spec.context_length == 512
    assert nano.model.config.multi_query
    vocab = nano.tokenizer.get_vocab()
    assert [vocab[t] for t in ("<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>")] == [0, 1, 2, 3, 4]
    assert nano.revision and nano.revision.startswith("sha256:")


def test_sharded_copy_loads_through_the_same_path(sharded_nano, nano, registry):
    assert len(list(sharded_nano.glob("*.safetensors"))) > 1
    assert (sharded_nano / "model.safetensors.index.json").exists()
    loaded = load_model(str(sharded_nano), registry, Settings())
    assert loaded.spec.fim is not None and loaded.spec.context_length == 512  # inferred from its files
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, nano.model(ids).logits)


def _load_in_subprocess(model: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    code = (
        "from playground.config import load_settings\n"
        "from playground.registry import load_registry\n"
        "from playground.loading import load_model\n"
        "from playground.errors import PlaygroundError\n"
        "import os\n"
        "try:\n"
        f"    load_model({model!r}, load_registry(), load_settings([], os.environ))\n"
        "except PlaygroundError as e:\n"
        "    print(type(e).__name__ + ': ' + e.message)\n"
    )
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def gated_hub(tmp_path):
    def start(status: int):
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(REPO / "support" / "hub_standin.py"), str(port), str(status)])
        time.sleep(0.5)
        started.append(proc)
        return f"http://127.0.0.1:{port}"

    started: list[subprocess.Popen] = []
    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("status", "token"), [(401, ""), (403, "hf_refused_token")])
def test_gated_repo_names_the_licence_page_and_hf_token(gated_hub, tmp_path, status, token):
    env = {"HF_ENDPOINT": gated_hub(status), "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path), "HF_TOKEN": token,
           "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5"}
    result = _load_in_subprocess("starcoder", env)
    assert result.stdout.startswith("GatedModelError: "), result.stdout + result.stderr[-2000:]
    assert "bigcode-model-license-agreement" in result.stdout and "HF_TOKEN" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_offline_without_cache_names_the_offline_options(tmp_path):
    result = _load_in_subprocess("bigcode/starcoderbase-1b", {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)})
    assert result.stdout.startswith("HubUnreachableError: "), result.stdout + result.stderr[-2000:]
    assert "HF_HUB_OFFLINE=1" in result.stdout and "--model /path/to/folder" in result.stdout


@pytest.mark.slow
def test_unreachable_hub_is_reported_as_such(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    env = {"HF_ENDPOINT": dead, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path), "HF_HUB_ETAG_TIMEOUT": "3"}
    result = _load_in_subprocess("bigcode/tiny_starcoder_py", env)
    assert result.stdout.startswith("HubUnreachableError: "), result.stdout + result.stderr[-2000:]
