"""A prompt an editor already wrapped in FIM sentinels, read back into prefix, suffix and repository context.

Editors render their own template and send it as a plain ``prompt`` (llm-ls,
Continue, Tabby), often for another model than the one served. Reading it back
lets the fill mode render the served model's own template and order, with the
same budget and end rules as the UI. Read here:

* the sentinels as StarCoder and StarCoder2 spell them (``<fim_prefix>``) and
  as SantaCoder does (``<fim-prefix>``);
* prefix-suffix-middle, StarCoder's suffix-prefix-middle (``<fim_prefix>
  <fim_suffix>S<fim_middle>P``) and the other common one (``<fim_suffix>S
  <fim_prefix>P<fim_middle>``); text after the middle sentinel in the first
  order is where the middle starts, so it joins the prefix;
* before the sentinels, StarCoder2's repository (``<repo_name>``,
  ``<file_sep>``) or StarCoder's documents (``<reponame>``, ``<filename>``,
  ``<|endoftext|>``); inside the prefix, StarCoder's ``<filename>`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playground.errors import FillMarkerError
from playground.prompting.repo_context import ContextFile, RepoContext
from playground.registry import FimTokens

_SPELLINGS = (FimTokens.starcoder(), FimTokens.santacoder())
_METADATA = ("<file_sep>", "<repo_name>", "<reponame>", "<filename>", "<gh_stars>", "<|endoftext|>")
_TOKENS = re.compile("(" + "|".join(re.escape(t) for t in (*_METADATA, *(t for f in _SPELLINGS for t in f.all())))
                     + ")")
_PATH = re.compile(r"[\w.@+-]+(/[\w.@+-]+)*")  # a StarCoder2 file's first line, when it is a path at all

Item = str  # a piece of text, or one of the tokens above


@dataclass(frozen=True)
class TemplatedFill:
    prefix: str
    suffix: str
    filename: str
    context: RepoContext


def read_templated(prompt: str) -> TemplatedFill | None:
    """The fill an editor's templated prompt asks for; None when it has no FIM sentinel (a completion)."""
    items = [item for item in _TOKENS.split(prompt) if item]
    fim = next((f for f in _SPELLINGS if any(t in items for t in f.all())), None)
    if fim is None:
        return None
    items = [item for item in items if item != fim.pad]
    where = {}
    for name, token in (("prefix", fim.prefix), ("suffix", fim.suffix), ("middle", fim.middle)):
        if items.count(token) != 1:
            raise FillMarkerError(f"The prompt has {items.count(token)} {token} sentinels; a fill prompt has one each "
                                  f"of {fim.prefix}, {fim.suffix} and {fim.middle}. Or send prefix and suffix.")
        where[name] = items.index(token)
    p, s, m = where["prefix"], where["suffix"], where["middle"]
    if s < p < m:  # suffix, prefix, middle
        suffix, prefix, after = items[s + 1:p], items[p + 1:m], items[m + 1:]
    elif p + 1 == s < m:  # StarCoder's SPM: the prefix comes last, after the middle sentinel
        suffix, prefix, after = items[s + 1:m], items[m + 1:], []
    elif p < s < m:
        prefix, suffix, after = items[p + 1:s], items[s + 1:m], items[m + 1:]
    else:
        raise FillMarkerError(f"The sentinels are out of order: {fim.middle} must come after {fim.prefix} and "
                              f"{fim.suffix}. Or send prefix and suffix.")
    repo_name, files, path_first = _head(items[:min(p, s)])
    filename, prefix_text = _opening(prefix, path_first)
    return TemplatedFill(prefix_text + _plain(after, "the middle"), _plain(suffix, "the suffix"), filename,
                         RepoContext(repo_name, tuple(files)))


def _plain(items: list[Item], where: str) -> str:
    tokens = [item for item in items if _TOKENS.fullmatch(item)]
    if tokens:
        raise FillMarkerError(f"{tokens[0]} cannot stand inside {where} of a fill prompt. Send it as text in "
                              "prefix and suffix instead.")
    return "".join(items)


def _opening(items: list[Item], path_first: bool) -> tuple[str, str]:
    """The edited file's path (a ``<filename>`` line, or StarCoder2's first line) and the prefix text."""
    if items[:1] == ["<filename>"]:
        line = items[1] if len(items) > 1 and not _TOKENS.fullmatch(items[1]) else ""
        path, _, text = line.partition("\n")
        return path, text + _plain(items[1 + bool(line):], "the prefix")
    text = _plain(items, "the prefix")
    first, newline, rest = text.partition("\n")
    if path_first and newline and _PATH.fullmatch(first):
        return first, rest
    return "", text


def _head(items: list[Item]) -> tuple[str, list[ContextFile], bool]:
    """Repository name, context files, and whether the edited file's path opens its prefix (StarCoder2)."""
    repo_name, files = "", []
    path_first = False
    i = 0
    while i < len(items):
        item = items[i]
        text = items[i + 1] if i + 1 < len(items) and not _TOKENS.fullmatch(items[i + 1]) else ""
        i += 2 if text else 1
        if item in ("<repo_name>", "<reponame>"):
            repo_name = text.strip()
        elif item == "<file_sep>":
            path_first = not text  # an empty last part: the edited file follows, its path first
            if text:
                files.append(_starcoder2_file(text))
        elif item == "<filename>":
            path, _, body = text.partition("\n")
            if body or i < len(items):
                files.append(ContextFile(path, body))
        elif item == "<gh_stars>" and files:  # StarCoder's star count line sits between path and text
            files[-1] = ContextFile(files[-1].filename, text.partition("\n")[2])
        elif item not in _METADATA and item.strip():  # free text before the sentinels: context of no name
            files.append(ContextFile("", item))
    return repo_name, files, path_first


def _starcoder2_file(text: str) -> ContextFile:
    first, newline, rest = text.partition("\n")
    return ContextFile(first, rest) if newline and _PATH.fullmatch(first) else ContextFile("", text)
