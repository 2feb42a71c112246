// Command portcullis is the Portcullis gateway and its operator and auditor
// tools, in one binary:
//
//	portcullis serve --dev                  run with an embedded dev CA, fake provider and default policy
//	portcullis serve --config FILE          run from a YAML configuration
//	portcullis audit verify DIR             check an audit log: records, chain, tree, checkpoints
//	portcullis audit prove DIR --seq N      inclusion proof of one record against a signed checkpoint
//	portcullis audit check-proof PROOF      check such a proof offline
//	portcullis audit consistency DIR A B    prove that checkpoint B extends checkpoint A
//	portcullis audit export DIR             records as JSON lines for a SIEM
//	portcullis audit key                    print (or generate) the checkpoint signing key's verifier
//	portcullis spire apply --file F         make SPIRE's workload entries match a file
//	portcullis approvals list               actions parked for a human approval (your own SVID: --cert/--key/--ca)
//	portcullis approvals approve ID --reason T   approve one (deny ID --reason T refuses it)
//	portcullis version
//
// Each subcommand's --help says more; docs/ has the formats and guarantees.
package main
