# skbtrail's container image: the static binary (no cgo) on distroless/static.
#
#   docker build -t skbtrail .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/skbtrail:VERSION --push .
#
# The builder runs on the build machine's platform and cross-compiles for the
# target's (no emulation); the BPF objects are committed, so no clang. The
# go build line is the one the end-to-end tests build and check
# (test/e2e/static_test.go): keep them the same.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -o /out/skbtrail ./cmd/skbtrail

# Runs as root (the default user of this image): loading BPF programs needs
# it, and the DaemonSet in README.md makes the container privileged.
FROM gcr.io/distroless/static-debian12
COPY --from=build /out/skbtrail /skbtrail
ENTRYPOINT ["/skbtrail"]
