package portcullis

decision := {"allow": undefined_rule, "reasons": ["ok"], "obligations": {}}
