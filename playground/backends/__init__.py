"""Backends run a prompt on a model and stream text back.

``base`` defines the one interface; ``local`` (transformers, in this
process), ``tgi`` and ``openai_compat`` (remote engines, sharing the stream
driver in ``remote_common``, the parameter mapping in ``wire`` and the error
table in ``remote_errors``) and ``fake`` (tests, offline demos) implement it.
"""
