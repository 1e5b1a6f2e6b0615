# Janus (Debian bookworm package) configured from the devstack's own templates (deploy/devstack/templates).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends janus curl \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/devstack/templates/janus*.jcfg /opt/janus-templates/
COPY deploy/docker/janus-entrypoint.sh /usr/local/bin/janus-entrypoint
EXPOSE 8088 7088 40000-40999/udp
ENTRYPOINT ["/usr/local/bin/janus-entrypoint"]
