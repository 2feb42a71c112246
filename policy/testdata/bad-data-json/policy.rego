package portcullis

decision := {"allow": true, "reasons": ["ok"], "obligations": {}}
