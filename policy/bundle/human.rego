# Package portcullis.human holds the rules for human principals: people
# calling through a client with their own SVID.
package portcullis.human

import data.portcullis.model_allowed

# A human may call any model the tenant allows, as the catalog permits.
allow_llm_invoke if model_allowed("models", "human")

deny_llm_invoke contains sprintf("model %s is not allowed for humans of tenant %s", [
	input.request.model,
	input.principal.tenant,
]) if {
	not model_allowed("models", "human")
}
