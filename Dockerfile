# syntax=docker/dockerfile:1
# Skiff image: skiff-agent (the node agent) and agentctl (its CLI), on Debian 12.
#   docker build -t skiff/skiff:0.1.0 .
# The Helm chart (helm/skiff) runs it; tests/helm/dockerfile_test.mjs checks that the binaries
# named here are the ones the CMake build produces.

# ---- build: the project's own bootstrap installs the same Debian packages CI uses ----------
FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
COPY tools/bootstrap /src/tools/bootstrap
RUN SKIFF_BOOTSTRAP_HELM_TOOLS=0 /src/tools/bootstrap && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build --target skiff-agent agentctl
# The runtime stage installs exactly the Debian packages that own the shared libraries the
# binaries load (ldd + dpkg -S), so the list cannot drift from the build.
RUN set -eu; \
    for f in $(ldd /build/agent/skiff-agent /build/cli/agentctl | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do \
      r=$(realpath "$f"); dpkg -S "$r" 2>/dev/null || dpkg -S "${r#/usr}"; \
    done | cut -d: -f1 | sort -u > /build/runtime-packages; \
    cat /build/runtime-packages

# ---- runtime: the binaries and their shared libraries, nothing else -------------------------
FROM debian:12-slim AS runtime
COPY --from=build /build/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
COPY --from=build /build/agent/skiff-agent /usr/local/bin/skiff-agent
COPY --from=build /build/cli/agentctl /usr/local/bin/agentctl
# Smoke test: the binaries start (flags parse, every library resolves).
RUN skiff-agent --version && agentctl --version
# The agent's heap on transparent huge pages (docs/configuration.md, SKIFF_HEAP_HUGEPAGES):
# set here so the agent does not need to re-execute itself to get it.
ENV GLIBC_TUNABLES=glibc.malloc.hugetlb=1
ENTRYPOINT ["/usr/local/bin/skiff-agent"]
