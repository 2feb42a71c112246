# SPIRE targets, included by the top-level Makefile. See spire/README.md.
#
#   make spire-build   build spire-server and spire-agent v1.13.3 into tools/bin (once)
#   make spire-up      start a local server and agent, apply spire/entries.yaml
#   make spire-down    stop what spire-up started and remove its state
#   make demo          SPIRE, gateway, example app and agent, audit verify, teardown

.PHONY: spire-build spire-up spire-down

spire-build:
	spire/build.sh

spire-up:
	spire/up.sh

spire-down:
	spire/down.sh

# On CI (CI=true) the SPIRE integration tests must run, never skip: build
# SPIRE before the Go tests (a no-op when tools/bin is current) and make a
# missing binary a failure.
ifeq ($(CI),true)
gotest: spire-build
export PORTCULLIS_REQUIRE_SPIRE := 1
endif

# The full stack, narrated, then torn down (spire/README.md, step 5).
.PHONY: demo
demo:
	spire/demo.sh
