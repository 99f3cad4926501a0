"""Protocol stand-ins for servers that cannot run here: TGI, and vLLM's OpenAI-compatible API."""
