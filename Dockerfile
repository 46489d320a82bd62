# syntax=docker/dockerfile:1
# The kayle-sync container image: one static (musl) binary on distroless, as a non-root user.
#
#   docker build -t kayle-sync .                        # builds the binary from source (slow)
#   docker buildx build --target prebuilt \
#     --platform linux/amd64,linux/arm64 .              # copies dist/linux-<arch>/kayle-sync
#
# The release workflow uses `--target prebuilt` with the very binaries it publishes in the
# release archives (built natively on each architecture), so the image holds the same bytes
# as the tarballs and no Rust is compiled under emulation. The default (last) stage builds
# from source, for a `docker build .` without a release at hand.

ARG RUST_VERSION=1.95
ARG RUNTIME=gcr.io/distroless/static-debian12:nonroot

# Builds kayle-sync from source. Alpine's Rust targets musl, so the binary is static.
FROM rust:${RUST_VERSION}-alpine AS source
# A C toolchain for aws-lc-sys (rustls' crypto). The packages' versions follow the Alpine
# release of the base image, which the Rust version tag fixes.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev gcc make cmake
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kayle-sync \
    && cp target/release/kayle-sync /kayle-sync

# What both ways of getting the binary share: base, labels, user, entry point.
FROM ${RUNTIME} AS runtime
ARG VERSION=0.0.0-dev
LABEL org.opencontainers.image.title="kayle-sync" \
      org.opencontainers.image.description="Declare Kayle ID webhook endpoints in YAML and make the organization match: plan, apply, watch." \
      org.opencontainers.image.source="https://github.com/kayle-sync/kayle-sync" \
      org.opencontainers.image.url="https://github.com/kayle-sync/kayle-sync" \
      org.opencontainers.image.documentation="https://github.com/kayle-sync/kayle-sync#readme" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# An empty directory owned by the non-root user, for a sink volume: Docker seeds a new named
# volume from the image, so `-v kayle-secrets:/secrets` is writable by kayle-sync.
COPY --from=gcr.io/distroless/static-debian12:nonroot --chown=65532:65532 /home/nonroot /secrets
# distroless' "nonroot" user (65532), by number so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
ENTRYPOINT ["/kayle-sync"]
CMD ["--help"]

# The release image: the static binary the release workflow built for this platform.
FROM runtime AS prebuilt
ARG TARGETARCH
COPY --chmod=0755 dist/linux-${TARGETARCH}/kayle-sync /kayle-sync

# The default image: built from source.
FROM runtime AS final
COPY --from=source /kayle-sync /kayle-sync
