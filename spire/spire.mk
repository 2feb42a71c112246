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

# The full stack, narrated, then torn down (spire/README.md, step 5).
.PHONY: demo
demo:
	spire/demo.sh
