# Dockerfile - the service's container image: built from source on Debian 12, run on Debian 12
# slim as an unprivileged user, with the configuration at /app/config.yml. As the seed's README:
#   docker build -t backup-service .        (or: make docker-build TAG=x)
#   docker run -d -p 8080:8080 -v "$PWD/custom_config.yml:/app/config.yml" --name backup-service backup-service
# The bundled /app/config.yml is the package's default configuration (HTTP on 0.0.0.0:8080,
# backups in the /var/lib/aerospike-backup-service volume). The version is the VERSION file's.

FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libmicrohttpd-dev libjansson-dev libyaml-dev libcurl4-openssl-dev libssl-dev \
      libzstd-dev zlib1g-dev libxml2-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make build && strip build/target/aerospike-backup-service build/target/aerospike-backup-service-cloud.so

FROM debian:12-slim
ARG VERSION=""
LABEL org.opencontainers.image.title="aerospike-backup-service" \
      org.opencontainers.image.description="Aerospike Backup Service: scheduled backups and restores of Aerospike clusters" \
      org.opencontainers.image.version="${VERSION}"
# The runtime libraries the binary and its cloud module link (the .deb's Depends), and curl for
# the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates curl \
      libcurl4 libjansson4 libmicrohttpd12 libssl3 libxml2 libyaml-0-2 libzstd1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 aerospike-backup-service \
 && useradd --system --uid 10001 --gid aerospike-backup-service --no-create-home \
      --home-dir /var/lib/aerospike-backup-service --shell /usr/sbin/nologin aerospike-backup-service \
 && install -d -m 0750 -o aerospike-backup-service -g aerospike-backup-service \
      /app /var/lib/aerospike-backup-service
COPY --from=build /src/build/target/aerospike-backup-service /usr/bin/aerospike-backup-service
COPY --from=build /src/build/target/aerospike-backup-service-cloud.so \
     /usr/lib/aerospike-backup-service/aerospike-backup-service-cloud.so
COPY --chown=10001:10001 packaging/aerospike-backup-service.yml /app/config.yml

USER 10001:10001
WORKDIR /app
VOLUME ["/var/lib/aerospike-backup-service"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["/usr/bin/aerospike-backup-service"]
CMD ["-c", "/app/config.yml"]
