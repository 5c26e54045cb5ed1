# The manager's image (the default target) and the example game server's (--target gameserver).
FROM golang:1.26 AS builder
WORKDIR /workspace
COPY go.mod go.sum ./
# go.mod replaces the GameLift Server SDK (not on the Go module proxy) with its copy under test/third_party.
COPY test/third_party/gamelift-server-sdk-go/ test/third_party/gamelift-server-sdk-go/
RUN go mod download
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/
COPY cmd/ cmd/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o manager ./cmd/manager

# The example game server (test/gameserver): the official Go Server SDK v5, unmodified.
FROM builder AS gameserver-builder
COPY test/gameserver/ test/gameserver/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o gameserver ./test/gameserver

FROM gcr.io/distroless/static:nonroot AS gameserver
# The SDK writes its log files under ./logs.
WORKDIR /home/nonroot
COPY --from=gameserver-builder /workspace/gameserver /gameserver
USER 65532:65532
EXPOSE 7777
ENTRYPOINT ["/gameserver"]

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532
ENTRYPOINT ["/manager"]
