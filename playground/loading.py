"""Loading a model in-process: placement plan, dtype and quantisation, hub errors.

The placement plan is computed on an empty-weights model before any weight is
read, so it works on a CPU-only machine with simulated GPU budgets, and the
log says where every block will go before the minutes-long load starts.
Hub failures (gated repo, no network, unknown repo) become ModelErrors whose
messages say what to do; no stack trace reaches a user.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from playground.config import Settings
from playground.config_types import DeviceMap
from playground.errors import (
    ConfigError,
    GatedModelError,
    HubUnreachableError,
    ModelError,
    ModelLoadError,
    QuantizationUnavailableError,
    UnknownModelError,
)
from playground.progress import LoadProgress
from playground.registry import ModelSpec, infer_spec, resolve_source

log = logging.getLogger("playground.loading")

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
_BLOCK_KEY = re.compile(r"^(.*\.(?:h|layers))\.(\d+)$")


# ---------------------------------------------------------------- dtype / quantisation


def choose_dtype(requested: str, cuda: bool | None = None) -> torch.dtype:
    """bf16 on a CUDA card that supports it (fp16 otherwise), fp32 on CPU."""
    if requested != "auto":
        return _DTYPES[requested]
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda:
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def quantization_config(mode: str, compute_dtype: torch.dtype, cuda: bool | None = None) -> Any:
    if mode == "none":
        return None
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda:
        raise QuantizationUnavailableError(
            f"--quantize {mode} needs a CUDA GPU and this machine has none. Drop --quantize to load in "
            "full precision, or run on a GPU machine."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise QuantizationUnavailableError(
            f"--quantize {mode} needs the bitsandbytes package. Install it with "
            "`pip install bitsandbytes==0.50.2`, or drop --quantize."
        )
    from transformers import BitsAndBytesConfig

    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype)


# ---------------------------------------------------------------- placement


@dataclass(frozen=True)
class PlacementPlan:
    """Where each transformer block goes, and the bytes each device holds."""

    device_map: dict[str, Any]
    blocks: dict[str, list[int]]  # device -> block indices
    bytes_per_device: dict[str, int]
    dtype: str
    split_blocks: tuple[str, ...] = ()  # modules below block level; empty when no block is split

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_per_device.values())

    def summary(self) -> str:
        parts = []
        for device, size in self.bytes_per_device.items():
            blocks = self.blocks.get(device, [])
            span = f"blocks {blocks[0]}-{blocks[-1]}" if blocks else "no blocks"
            parts.append(f"{device}: {span} ({len(blocks)}), {size / 2**30:.2f} GiB")
        return f"{self.dtype}; " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "devices": {
                d: {"blocks": self.blocks.get(d, []), "bytes": b, "gib": round(b / 2**30, 3)}
                for d, b in self.bytes_per_device.items()
            },
            "device_map": self.device_map,
            "summary": self.summary(),
        }


def _device_name(device: Any) -> str:
    return f"cuda:{device}" if isinstance(device, int) else str(device)


def _empty_model(config: Any) -> torch.nn.Module:
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    model.tie_weights()
    return model


def _memory_dtype(dtype: torch.dtype, quantize: str) -> Any:
    from accelerate.utils import CustomDtype

    return {"8bit": torch.int8, "4bit": CustomDtype.INT4}.get(quantize, dtype)


def plan_placement(
    config: Any,
    *,
    dtype: torch.dtype,
    strategy: DeviceMap | None,
    max_memory: dict[str, str] | None = None,
    quantize: str = "none",
    default_device: str = "cpu",
) -> PlacementPlan:
    """Plan on an empty-weights model; no weight is read and no GPU is needed."""
    from accelerate.utils import compute_module_sizes, get_balanced_memory, infer_auto_device_map

    model = _empty_model(config)
    no_split = list(getattr(model, "_no_split_modules", None) or [])
    memory_dtype = _memory_dtype(dtype, quantize)
    budget = {(int(k) if str(k).isdigit() else k): v for k, v in (max_memory or {}).items()} or None
    if strategy is None:
        device_map: dict[str, Any] = {"": default_device}
    elif strategy.mapping:
        device_map = dict(strategy.mapping)
    else:
        if strategy.strategy in ("auto", "balanced", "balanced_low_0"):
            budget = get_balanced_memory(
                model, max_memory=budget, no_split_module_classes=no_split, dtype=memory_dtype,
                low_zero=strategy.strategy == "balanced_low_0",
            )
        device_map = infer_auto_device_map(
            model, max_memory=budget, no_split_module_classes=no_split, dtype=memory_dtype
        )
    sizes = compute_module_sizes(model, dtype=memory_dtype)
    bytes_per_device: dict[str, int] = {}
    for module, device in device_map.items():
        name = _device_name(device)
        bytes_per_device[name] = bytes_per_device.get(name, 0) + int(sizes.get(module) or 0)
    n_blocks = int(getattr(config, "n_layer", None) or getattr(config, "num_hidden_layers", None) or 0)
    blocks = _blocks_per_device(model, device_map, n_blocks)
    split = tuple(k for k in device_map if re.search(r"\.(?:h|layers)\.\d+\.", k))
    return PlacementPlan(
        device_map={k: v for k, v in device_map.items()},
        blocks=blocks,
        bytes_per_device=bytes_per_device,
        dtype=str(quantize if quantize != "none" else dtype).replace("torch.", ""),
        split_blocks=split,
    )


def _blocks_per_device(model: torch.nn.Module, device_map: dict[str, Any], n_blocks: int) -> dict[str, list[int]]:
    prefix = next(
        (m.group(1) for name, _ in model.named_modules() if (m := _BLOCK_KEY.match(name))), None
    )
    blocks: dict[str, list[int]] = {}
    if prefix is None:
        return blocks
    for index in range(n_blocks):
        block = f"{prefix}.{index}"
        # The most specific device_map key that contains this block decides its device.
        owners = [k for k in device_map
                  if k == "" or block == k or block.startswith(k + ".") or k.startswith(block + ".")]
        if owners:
            owner = max(owners, key=len)
            blocks.setdefault(_device_name(device_map[owner]), []).append(index)
    return blocks


# ---------------------------------------------------------------- loading


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: Any
    tokenizer: Any
    plan: PlacementPlan
    dtype: torch.dtype
    quantization: str
    revision: str | None  # commit hash (hub) or weights digest (folder)


def _hub_kwargs(settings: Settings, spec: ModelSpec | None) -> dict[str, Any]:
    return {"revision": settings.revision or (spec.revision if spec else None), "token": settings.hf_token}


def translate_hub_error(exc: BaseException, source: str, spec: ModelSpec | None) -> ModelError:
    """Map huggingface_hub / transformers failures to errors a user can act on."""
    from huggingface_hub import errors as hub

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    kinds = {type(e) for e in chain}
    text = " ".join(str(e) for e in chain)
    license_url = spec.license_url if spec and spec.license_url else f"https://huggingface.co/{source}"
    if any(issubclass(k, hub.GatedRepoError) for k in kinds) or "gated repo" in text.lower():
        return GatedModelError(
            f"{source} is gated. Accept its licence at {license_url} while logged in, then pass a token that "
            "can read it: set HF_TOKEN (or --hf-token). If you already set one, the hub refused it: check that "
            "it is valid and belongs to the account that accepted the licence."
        )
    if any(issubclass(k, hub.RevisionNotFoundError) for k in kinds):
        return UnknownModelError(f"{source} has no revision {text.split('revision')[-1][:40].strip()!r}. "
                                 "Check --revision (a branch, tag or commit hash).")
    if any(issubclass(k, hub.RepositoryNotFoundError) for k in kinds):
        return UnknownModelError(
            f"{source} was not found on the hub (or it is private and HF_TOKEN cannot read it). "
            "Check the id, or pass a local folder to --model."
        )
    offline_kinds = (hub.LocalEntryNotFoundError, hub.OfflineModeIsEnabled)
    if any(issubclass(k, offline_kinds) for k in kinds) or _looks_offline(chain):
        return HubUnreachableError(
            f"Cannot reach the Hugging Face hub to fetch {source}, and it is not in the local cache. "
            "Options: connect this machine to huggingface.co; or download the model elsewhere and pass its "
            "folder with --model /path/to/folder; or pre-fill the cache (HF_HOME) and set HF_HUB_OFFLINE=1; "
            "or run the embedded default with --model nano-starcoder."
        )
    return ModelLoadError(f"Could not load {source}: {chain[-1]}. Check the model files and flags.")


def _looks_offline(chain: list[BaseException]) -> bool:
    import httpx

    network = (httpx.ConnectError, httpx.TimeoutException, ConnectionError, TimeoutError)
    return any(isinstance(e, network) for e in chain)


def _weights_digest(folder: str) -> str | None:
    """A short content hash of a local checkpoint, so shares name exact weights."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(str(file.stat().st_size).encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 20))  # first MiB: headers and leading tensors; cheap on big shards
    return "sha256:" + digest.hexdigest()[:16]


def load_model(
    name: str,
    registry: dict[str, ModelSpec],
    settings: Settings,
    progress: LoadProgress | None = None,
) -> LoadedModel:
    """Resolve, plan, then load. Every failure is a ModelError or ConfigError."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    progress = progress or LoadProgress()
    torch.set_num_threads(settings.model_threads)  # in effect process-wide; the engine loads on its main thread
    spec, source = resolve_source(name, registry)
    cuda = torch.cuda.is_available()
    dtype = choose_dtype(settings.dtype, cuda)
    quant = quantization_config(settings.quantize, dtype, cuda)
    _check_devices(settings, cuda)
    hub = _hub_kwargs(settings, spec)
    try:
        progress.step("config", f"Reading the config of {source}")
        config = AutoConfig.from_pretrained(source, **hub)
        progress.step("tokenizer", "Loading the tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(source, **hub)
    except (OSError, ValueError) as exc:
        raise translate_hub_error(exc, source, spec) from exc
    if spec is None:
        context = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None) or 2048
        spec = infer_spec(name, source, int(context), set(tokenizer.get_vocab()), tokenizer.eos_token)
    progress.step("planning", "Planning placement on an empty-weights model")
    plan = plan_placement(
        config, dtype=dtype, strategy=settings.device_map, max_memory=dict(settings.max_memory or {}) or None,
        quantize=settings.quantize, default_device="cuda:0" if cuda else "cpu",
    )
    log.info("Placement plan for %s: %s", spec.id, plan.summary())
    progress.step("weights", f"Loading weights ({plan.total_bytes / 2**30:.2f} GiB as {plan.dtype})")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source,
            dtype=dtype,
            device_map=plan.device_map if settings.device_map or cuda else None,
            max_memory=_accelerate_budget(settings.max_memory),
            quantization_config=quant,
            **hub,
        )
    except (OSError, ValueError) as exc:
        raise translate_hub_error(exc, source, spec) from exc
    except (RuntimeError, ImportError) as exc:
        raise ModelLoadError(f"Loading {source} failed: {exc}. Check --dtype, --device-map and free memory.") from exc
    model.eval()
    revision = getattr(config, "_commit_hash", None) or (_weights_digest(source) if Path(source).is_dir() else None)
    progress.step("ready", f"{spec.id} is ready ({plan.summary()})")
    return LoadedModel(spec, model, tokenizer, plan, dtype, settings.quantize, revision)


def _check_devices(settings: Settings, cuda: bool) -> None:
    if settings.device_map and not cuda and _names_gpu(settings.device_map, settings.max_memory):
        raise ConfigError(
            "--device-map/--max-memory name a GPU but this machine has no CUDA device. "
            "Drop them to load on the CPU, or run on a GPU machine."
        )


def _names_gpu(device_map: DeviceMap, max_memory: Any) -> bool:
    return bool(max_memory and any(str(k).isdigit() for k in max_memory)) or device_map.names_gpu()


def _accelerate_budget(max_memory: Any) -> dict[Any, str] | None:
    if not max_memory:
        return None
    return {(int(k) if str(k).isdigit() else k): v for k, v in max_memory.items()}
