# StarCoder Playground image.
#   CPU (default):  docker build -t starcoder-playground .
#   CUDA:           docker build --build-arg VARIANT=cuda -t starcoder-playground:cuda .
# Flags after the image name go to app.py: docker run ... starcoder-playground:cuda --device-map auto
#
# Both variants start from the same slim Python: PyPI's CUDA build of torch carries its own CUDA
# libraries, and `docker run --gpus` brings the driver, so no CUDA base image is needed.
# The install and start steps are the README's commands; tests/deploy runs them on every CI run.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG VARIANT=cpu
# The CPU image takes PyTorch's CPU wheels: PyPI's default torch is the CUDA build, gigabytes larger.
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
RUN case "$VARIANT" in cpu|cuda) ;; *) echo "VARIANT must be cpu or cuda, not '$VARIANT'" >&2; exit 1;; esac

# Spaces and good practice: an unprivileged user with UID 1000.
RUN useradd --create-home --uid 1000 user \
    && python3 -m venv /opt/venv && chown -R user /opt/venv \
    && mkdir -p /home/user/.cache/huggingface /home/user/data && chown -R user /home/user
ENV PATH=/opt/venv/bin:$PATH \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER user
WORKDIR /home/user/app

COPY --chown=user requirements.txt requirements-gpu.txt ./
# torch alone, without its dependencies, comes from the CPU index at the version requirements.txt
# pins; nothing else is taken from that index. Everything else, torch's dependencies included,
# then comes from PyPI, where the installed torch already satisfies the pin.
RUN if [ "$VARIANT" = cpu ] && [ -n "$TORCH_CPU_INDEX" ]; then \
        pip install --no-cache-dir --no-deps --index-url "$TORCH_CPU_INDEX" "$(grep -E '^torch==' requirements.txt)"; \
    fi \
    && pip install --no-cache-dir -r requirements.txt \
    && if [ "$VARIANT" = cuda ]; then pip install --no-cache-dir -r requirements-gpu.txt; fi
COPY --chown=user . .

# The hub cache and the share database live in volumes so they outlive the container.
ENV HF_HOME=/home/user/.cache/huggingface \
    PLAYGROUND_DATA_DIR=/home/user/data \
    PLAYGROUND_HOST=0.0.0.0 \
    PLAYGROUND_PORT=7860 \
    PYTHONUNBUFFERED=1
VOLUME ["/home/user/.cache/huggingface", "/home/user/data"]
EXPOSE 7860
# /api/health answers 503 until the model is loaded; the first start downloads StarCoder's 62 GB of
# fp32 weights, hence the hour of grace. Change the port with -e PLAYGROUND_PORT, which this reads.
HEALTHCHECK --interval=30s --timeout=5s --start-period=3600s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request; port = os.environ.get('PLAYGROUND_PORT', '7860'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/api/health', timeout=4).status != 200)"]
ENTRYPOINT ["python3", "app.py"]
