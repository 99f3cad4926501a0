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
RUN if [ "$VARIANT" = cpu ] && [ -n "$TORCH_CPU_INDEX" ]; then export PIP_EXTRA_INDEX_URL="$TORCH_CPU_INDEX"; fi \
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
# A large model takes minutes to load; /api/health answers 503 until it is ready.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:7860/api/health', timeout=4).status != 200)"]
ENTRYPOINT ["python3", "app.py"]
