"""Where the chat mode's Tech Assistant prompt comes from: ours, a file, or the hub.

Ours lives in ``prompts/tech_assistant/`` and is versioned by file name; any
other text is versioned by its content hash, so a share always says exactly
which prompt framed the conversation.
"""

from __future__ import annotations

from pathlib import Path

from playground.errors import ConfigError, HubUnreachableError
from playground.prompting.chat import TechAssistantPrompt, parse_tech_assistant

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
DEFAULT_VERSION = "tech_assistant/v1"
OFFICIAL = "hub:bigcode/ta-prompt"  # the published TA_prompt_v1.txt (Apache-2.0), fetched at run time


def load_tech_assistant(source: Path | str | None = None, token: str | None = None) -> TechAssistantPrompt:
    if source is None:
        return parse_tech_assistant(_read(PROMPTS_DIR / f"{DEFAULT_VERSION}.txt"), DEFAULT_VERSION)
    if str(source) == OFFICIAL:
        return parse_tech_assistant(_read(_download_official(token)))
    return parse_tech_assistant(_read(Path(source)))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the chat prompt {path}: {exc}. Check --chat-prompt.") from exc


def _download_official(token: str | None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download("bigcode/ta-prompt", "TA_prompt_v1.txt", repo_type="dataset", token=token))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise HubUnreachableError(
            "Could not fetch TA_prompt_v1.txt from the bigcode/ta-prompt dataset on the hub. Download it "
            "elsewhere and pass its path with --chat-prompt, or leave --chat-prompt unset to use ours."
        ) from exc
