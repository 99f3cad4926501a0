"""The messages between the web process and its engine process: plain tuples, first the tag.

Web → engine:
  (GENERATE, request_id, Prompt, GenerationParams)   start a generation
  (CANCEL, request_id)                               stop it at the next token
  (COUNT, request_id, Prompt)                        how many tokens a prompt costs
  (SHUTDOWN,)                                        finish and exit

Engine → web:
  (PROGRESS, phase, message)                         a loading step, as LoadProgress.step
  (READY, ModelSpec, BackendInfo)                    the model serves
  (FAILED, message)                                  loading failed; the engine exits
  (EVENTS, request_id, [Chunk | Finished, ...])      a burst of events, in order
  (RAISED, request_id, PlaygroundError)              refused before its first chunk
  (COUNTED, request_id, int | PlaygroundError)       the answer to COUNT

Events of a generation travel in bursts: whatever the model made while the
previous message was being written goes in the next one.
"""

from __future__ import annotations

GENERATE, CANCEL, COUNT, SHUTDOWN = "generate", "cancel", "count", "shutdown"
PROGRESS, READY, FAILED, EVENTS, RAISED, COUNTED = "progress", "ready", "failed", "events", "raised", "counted"
