# Package portcullis.application holds the rules for application principals:
# services calling on their own behalf.
package portcullis.application

import data.portcullis.model_allowed

# An application may call the tenant's models the catalog admits for
# applications (so not human-only models such as o3-mini in the dev data).
allow_llm_invoke if model_allowed("models", "application")

deny_llm_invoke contains sprintf("model %s is not allowed for applications of tenant %s", [
	input.request.model,
	input.principal.tenant,
]) if {
	not model_allowed("models", "application")
}
