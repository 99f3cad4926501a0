"""StarCoder Playground: chat, fill-in-the-middle and completion for StarCoder-family models.

Data flows one way: web edge -> mode -> prompting -> backend -> generation stream -> store.
"""

__version__ = "0.1.0"
