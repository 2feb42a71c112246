package portcullis.application_test

import data.portcullis
import data.portcullis_test.llm

test_application_tenant_models_allowed if {
	every model in ["gpt-4o-mini", "gpt-4o"] {
		d := portcullis.decision with input as llm("application", "acme", model)
		d.allow
		d.reasons == [sprintf("model %s is allowed for applications of tenant acme", [model])]
		d.obligations.max_tokens == 0
	}
}

test_application_human_only_model_denied if {
	d := portcullis.decision with input as llm("application", "acme", "o3-mini")
	not d.allow
	d.reasons == ["model o3-mini is not allowed for applications of tenant acme"]
}

test_application_model_not_in_tenant_denied if {
	d := portcullis.decision with input as llm("application", "globex", "gpt-4o")
	not d.allow
	d.reasons == ["model gpt-4o is not allowed for applications of tenant globex"]
}
