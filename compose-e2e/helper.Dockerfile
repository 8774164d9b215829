# The compose stack's helper images (upstream registry, TUF file server),
# FROM scratch like trustproxy's own image; build-images.sh builds them. The
# build context holds: app (a static binary), healthprobe, passwd, group, data/.
FROM scratch
COPY passwd group /etc/
COPY --chown=65532:65532 data/ /data/
COPY app healthprobe /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/app"]
