# StarCoder Playground image.
#   CPU (default):  docker build -t starcoder-playground .
#   CUDA:           docker build --build-arg VARIANT=cuda -t starcoder-playground:cuda .
# The install and start steps are the README's commands, so CI exercises them.
ARG VARIANT=cpu
ARG BASE_cpu=python:3.11-slim-bookworm
ARG BASE_cuda=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

FROM ${BASE_cpu} AS base-cpu
FROM ${BASE_cuda} AS base-cuda
RUN apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/* && ln -sf /usr/bin/python3.11 /usr/local/bin/python3

FROM base-${VARIANT}
ARG VARIANT
# Spaces and good practice: an unprivileged user with UID 1000.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app
COPY --chown=user requirements.txt requirements-gpu.txt ./
RUN python3 -m venv /opt/venv && chown -R user /opt/venv
ENV PATH=/opt/venv/bin:$PATH
USER user
RUN pip install --no-cache-dir -r requirements.txt \
    && if [ "$VARIANT" = "cuda" ]; then pip install --no-cache-dir -r requirements-gpu.txt; fi
COPY --chown=user . .

# The hub cache and the share database live in volumes so they survive new containers.
ENV HF_HOME=/home/user/.cache/huggingface \
    PLAYGROUND_DATA_DIR=/home/user/data \
    PLAYGROUND_HOST=0.0.0.0 \
    PLAYGROUND_PORT=7860
RUN mkdir -p /home/user/.cache/huggingface /home/user/data
VOLUME ["/home/user/.cache/huggingface", "/home/user/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:7860/api/health', timeout=4).status != 200)"
CMD ["python3", "app.py"]
