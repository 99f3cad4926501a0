"""The messages between the web process and its engine process: plain tuples, first the tag.

Web → engine:
  (GENERATE, request_id, Prompt, GenerationParams)   start a generation
  (CANCEL, request_id)                               stop it at the next token
  (COUNT, request_id, Prompt)                        how many tokens a prompt costs
  (PING,)                                            the heartbeat: answer at once
  (SHUTDOWN,)                                        finish and exit

Engine → web:
  (PROGRESS, phase, message)                         a loading step, as LoadProgress.step
  (READY, ModelSpec, BackendInfo)                    the model serves
  (FAILED, message)                                  loading failed; the engine exits
  (EVENTS, request_id, [Chunk | Finished, ...])      a burst of events, in order
  (RAISED, request_id, PlaygroundError)              refused before its first chunk
  (COUNTED, request_id, int | PlaygroundError)       the answer to COUNT
  (PONG,)                                            the answer to PING, from the engine's reader thread

Events of a generation travel in bursts: whatever the model made while the
previous message was being written goes in the next one.
"""

from __future__ import annotations

GENERATE, CANCEL, COUNT, PING, SHUTDOWN = "generate", "cancel", "count", "ping", "shutdown"
PROGRESS, READY, FAILED, EVENTS, RAISED, COUNTED, PONG = (
    "progress", "ready", "failed", "events", "raised", "counted", "pong")
