"""The edges: the Gradio UI, the REST API, and the FastAPI app that serves both."""
