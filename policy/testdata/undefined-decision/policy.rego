package portcullis

decision := {"allow": true, "reasons": ["never"], "obligations": {}} if input.action == "never"
