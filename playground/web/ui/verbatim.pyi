"""``gr.Code`` that keeps leading and trailing whitespace: indentation is part of the code.

Gradio checks a ``.pyi`` stub beside any module that defines a component class
and writes one if it is missing or stale; ``verbatim.pyi`` is therefore shipped
beside this file, so importing it writes nothing.
"""

from __future__ import annotations

import gradio as gr

from gradio.events import Dependency

class VerbatimCode(gr.Code):
    def postprocess(self, value: str | None) -> str | None:
        return value

    @classmethod
    def get_block_name(cls) -> str:
        return "code"
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component  # render with the stock code editor in the browser