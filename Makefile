# v6edge — build, demo, tests, benchmarks, package.
# Two set-up commands on a fresh Debian machine, as root: `make demo` and `make test`.

SHELL     := /bin/bash
# The one prerequisite make deps does not install: Go, at least the go.mod
# version, on PATH or at /usr/local/go (where the Go release tarball unpacks).
GO        ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GO_MIN    := $(shell awk '$$1 == "go" {print $$2; exit}' go.mod)
# The tests run go themselves (go build, go list): the same one.
export PATH := $(if $(filter /%,$(GO)),$(dir $(GO)):)$(PATH)
BIN       := bin/v6edge
LAB       := bin/v6edge-lab
# X.Y.Z at a tag, X.Y.Z+gitN.HASH N commits after it, 0.0.0+gitN.HASH before
# any tag: sorts right for dpkg (packaging/version.sh, tested in packaging/).
VERSION   ?= $(shell packaging/version.sh 2>/dev/null || echo 0.0.0)
LDFLAGS   := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
GOBIN     := $(shell $(GO) env GOPATH)/bin

# Debian packages the lab and the integration tests use as real peers.
DEB_PACKAGES := iproute2 nftables kea-dhcp6-server kea-admin ndisc6 radvd radvdump dhcpcd-base keepalived \
                conntrack tcpdump iputils-ping procps isc-dhcp-server curl util-linux prometheus

# make deb's package is linted in make test (packaging/deb_test.go).
DEB_PACKAGES += lintian
# go test -race needs cgo, so a C compiler and libc headers, which a minimal
# Debian lacks.
DEB_PACKAGES += gcc libc6-dev

.PHONY: all build lab deps demo test unit lint fuzz bench deb clean

all: build

# build: the daemon, and beside it the lab tool (demo, bench) that runs it;
# the lab is not linked into bin/v6edge.
build: lab
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/v6edge

lab:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(LAB) ./cmd/v6edge-lab

# deps checks Go, then installs the Debian packages that are missing (nothing
# when all are there).
# Their services must not start on install (the lab runs every peer itself, in its own
# namespaces): where no policy-rc.d exists, one that forbids starting them is in place
# for the duration of the install only.
deps:
	@have=$$(GOTOOLCHAIN=local $(GO) env GOVERSION 2>/dev/null | sed 's/^go//'); \
	if [ -z "$$have" ]; then echo "make deps: Go $(GO_MIN) or newer is needed, on PATH or at /usr/local/go; it is not installed" >&2; exit 1; fi; \
	if [ "$$(printf '%s\n%s\n' "$(GO_MIN)" "$$have" | sort -V | head -1)" != "$(GO_MIN)" ]; then \
		echo "make deps: $(GO) is Go $$have; go.mod needs $(GO_MIN) or newer" >&2; exit 1; fi
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		guard=""; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1; \
		fi; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
		if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
		exit $$rc; \
	fi
	@# Debian starts peer daemons on install where an init system runs; the lab runs its own.
	@for s in kea-dhcp6-server radvd keepalived; do (command -v systemctl >/dev/null && systemctl disable --now $$s >/dev/null 2>&1) || true; done

demo: deps build
	./$(LAB) demo

lint:
	@test -z "$$(gofmt -s -l $$(git ls-files '*.go'))" || { echo "gofmt -s would change:"; gofmt -s -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...

# test: lint, then every package with the race detector. As root the network-namespace
# integration tests run too, against real Kea, rdisc6, radvd, dhcpcd, keepalived and nft.
test: deps lint build
	$(GO) test -race -count=1 -timeout 15m ./... 2>&1 | tee test.out; exit $${PIPESTATUS[0]}

unit:
	$(GO) test -short -count=1 ./...

# fuzz: run every fuzz target for FUZZTIME each (the corpora in testdata/ run in `make test` too).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 200x ./nat/ ./ra/ ./dhcp6pd/ ./dhcp6srv/ 2>&1 | tee bench.out
	./$(LAB) bench
	@# the LAN DHCPv6 server against Kea under perfdhcp:
	$(GO) test -tags perf -count=1 -run TestPerf -v ./dhcp6srv/ 2>&1 | grep -E '^\|' || true
	@# v6edge and dhcpcd 9 against each ISP variety (incl. the 4-minute long refusal):
	$(GO) test -tags comparison -count=1 -run 'ISP|Refusal' -v ./integration/ 2>&1 | grep -E 'incumbent:|v6edge:|^(---|ok|FAIL)' || true

# deb: a Debian package in dist/ (binary, systemd unit, example config, man pages).
deb: build
	VERSION=$(VERSION) packaging/mkdeb.sh

clean:
	rm -rf bin dist test.out bench.out
