"""Backends run a prompt on a model and stream text back.

``base`` defines the one interface and ``registry`` names every backend:
``local`` (transformers, in this process or its engine process), ``tgi`` and
``openai`` (remote engines: one ``RemoteBackend`` driver in ``remote_common``
holding a ``remote_protocol.EngineProtocol`` from ``tgi`` or
``openai_compat``, with the parameter tables in ``wire`` and ``flavours`` and
the error table in ``remote_errors``) and ``fake`` (tests, offline demos).
"""
