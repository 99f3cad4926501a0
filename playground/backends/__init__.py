"""Backends run a prompt on a model and stream text back.

``base`` defines the one interface; ``local`` (transformers), ``remote`` (TGI
and OpenAI-compatible engines) and ``fake`` (tests, offline demos) implement it.
"""
