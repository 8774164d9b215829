# trustproxy container image, FROM scratch: no base image is pulled, so it
# builds on a machine that reaches no container registry.
#
# Build (one command, from the repository root):
#
#     compose-e2e/build-images.sh dev trustproxy    # -> trustproxy/trustproxy:dev
#
# The script builds static binaries on the host (CGO_ENABLED=0 go build of
# ./cmd/trustproxy and ./compose-e2e/cmd/healthprobe) and hands this file a
# small build context that holds exactly:
#
#     trustproxy  healthprobe  ca-certificates.crt  passwd  group  data/  tmp/
#
# Run: mount the configuration at /config/config.yaml (listen on ":5000"),
# keep the cache and trust state on the /data volume (storage rootdirectory,
# spooldir and state under /data), publish port 5000:
#
#     docker run -d -p 127.0.0.1:5000:5000 -v $PWD/config.yaml:/config/config.yaml:ro \
#         -v trustproxy-data:/data trustproxy/trustproxy:dev
FROM scratch

# TLS to upstream registries and trust servers.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# A named non-root user (uid/gid 65532, "trustproxy"): logs and `docker top`
# show a name, and nothing in the container runs as root.
COPY passwd group /etc/
# /data is owned by the user, so a fresh named volume mounted there is
# writable (docker copies the image's ownership into an empty volume).
COPY --chown=65532:65532 data/ /data/
# os.TempDir() for anything not configured to spool under /data. COPY does
# not keep a directory's mode (no 1777), so the one user owns it.
COPY --chown=65532:65532 tmp/ /tmp/
COPY trustproxy healthprobe /usr/local/bin/

USER 65532:65532
VOLUME ["/data"]
EXPOSE 5000

# Liveness only (/healthz): a proxy that cannot reach its trust server is
# alive and denies; readiness (/readyz: trust data loaded) is for load
# balancers and orchestrators. Scratch has no shell or curl: healthprobe is a
# static Go program that GETs the URL. A proxy serving TLS needs
# ["/usr/local/bin/healthprobe", "-insecure", "https://127.0.0.1:5000/healthz"].
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/healthprobe", "http://127.0.0.1:5000/healthz"]

ENTRYPOINT ["/usr/local/bin/trustproxy"]
CMD ["serve", "--config", "/config/config.yaml"]
