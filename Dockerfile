# Builds the leadrouter binary in a pinned Go image and runs it from a minimal
# image as a non-root user.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/leadrouter ./app

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/leadrouter /leadrouter
USER nonroot:nonroot
EXPOSE 8080
ENV LEADROUTER_ADDR=:8080
ENTRYPOINT ["/leadrouter"]
CMD ["serve"]
