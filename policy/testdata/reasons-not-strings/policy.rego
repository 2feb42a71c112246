package portcullis

decision := {"allow": true, "reasons": [1], "obligations": {}}
