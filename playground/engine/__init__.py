"""The local model in its own engine process.

``EngineBackend`` (the web process) is a Backend like any other; behind it a
child process (``worker.main``) loads the model with the same loading code and
runs ``LocalBackend`` there. The web process never imports torch, its Python
never waits on the model's, and a model that crashes (a segfault, an
out-of-memory kill) takes only the child down: running generations end with
their partial text and an error, and the engine is started again.

Messages are pickled tuples over one ``multiprocessing`` pipe, both ends this
package's own code (see ``protocol``).
"""
