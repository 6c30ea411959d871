# Makefile - the seed's entry points, on top of CMake/CPack:
#   make build                        the service binary and its cloud module into build/target/
#   make packages                     .deb and .rpm (+ .sha256 each) into build/target/
#   make test                         the whole test suite (scripts/test.sh)
#   make release NEXT_VERSION=x.y.z   bump VERSION (and the OpenAPI spec's version)
#   make docker-build TAG=...         the container image (needs a Docker engine)
#   make clean                        remove build/target and the packaging work files
# The version of everything (-v, GET /version, packages, image) is the VERSION file.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

BINARY_NAME := aerospike-backup-service
VERSION := $(shell sed -e 's/^v//' VERSION)
# Shared with scripts/test.sh (same flags), so CI compiles once.
BUILD_DIR ?= build/release
TARGET_DIR := build/target
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
TAG ?= $(VERSION)
IMAGE ?= aerospike/aerospike-backup-service

.PHONY: build packages checksums test release docker-build clean

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
		-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >/dev/null
	cmake --build $(BUILD_DIR) -j$(JOBS) --target $(BINARY_NAME) abs_cloud abs_manpage
	mkdir -p $(TARGET_DIR)
	cp $(BUILD_DIR)/$(BINARY_NAME) $(BUILD_DIR)/$(BINARY_NAME)-cloud.so $(TARGET_DIR)/
	@echo "built $(TARGET_DIR)/$(BINARY_NAME) $(VERSION)"

packages: build
	@command -v rpmbuild >/dev/null || { echo "make packages: rpmbuild is missing (bash scripts/deps.d/packaging.sh)" >&2; exit 1; }
	@command -v dpkg-shlibdeps >/dev/null || { echo "make packages: dpkg-shlibdeps is missing (bash scripts/deps.d/packaging.sh)" >&2; exit 1; }
	rm -rf $(BUILD_DIR)/cpack
	rm -f $(TARGET_DIR)/*.deb $(TARGET_DIR)/*.rpm $(TARGET_DIR)/*.sha256
	cd $(BUILD_DIR) && cpack -G "DEB;RPM"
	cp $(BUILD_DIR)/cpack/*.deb $(BUILD_DIR)/cpack/*.rpm $(TARGET_DIR)/
	$(MAKE) --no-print-directory checksums

# One <package>.sha256 per package holding the hex digest, as the ABS releases do.
checksums:
	for f in $(TARGET_DIR)/*.deb $(TARGET_DIR)/*.rpm; do \
		sha256sum "$$f" | cut -d' ' -f1 >"$$f.sha256"; \
		echo "$$f $$(cat "$$f.sha256")"; \
	done

test:
	bash scripts/test.sh

release:
	bash packaging/release.sh "$(NEXT_VERSION)"

docker-build:
	docker build --tag $(IMAGE):$(TAG) --build-arg VERSION=$(VERSION) --file Dockerfile .

clean:
	rm -rf $(TARGET_DIR) $(BUILD_DIR)/cpack $(BUILD_DIR)/_CPack_Packages
