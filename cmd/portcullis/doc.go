// Command portcullis is the Portcullis gateway and its operator and auditor
// tools, in one binary:
//
//	portcullis serve --dev                 run with an embedded dev CA, fake provider and default policy
//	portcullis serve --config FILE         run from a YAML configuration
//	portcullis audit verify DIR            check an audit log's hash chain
//	portcullis spire apply --file F ...    make SPIRE's workload entries match a file
//	portcullis version
package main
