package portcullis.human_test

import data.portcullis
import data.portcullis_test.llm

test_human_tenant_models_allowed if {
	every model in ["gpt-4o-mini", "gpt-4o", "o3-mini"] {
		d := portcullis.decision with input as llm("human", "acme", model)
		d.allow
		d.obligations.max_tokens == 0
	}
}

test_human_model_not_in_tenant_denied if {
	d := portcullis.decision with input as llm("human", "globex", "gpt-4o")
	not d.allow
	d.reasons == ["model gpt-4o is not allowed for humans of tenant globex"]
}

test_human_model_not_for_humans_in_catalog_denied if {
	d := portcullis.decision with input as llm("human", "acme", "gpt-4o")
		with data.models["gpt-4o"].kinds as ["agent"]
	not d.allow
	d.reasons == ["model gpt-4o is not allowed for humans of tenant acme"]
}
