package portcullis

# "max_token" is not an obligation: dropping it silently would fail open.
decision := {"allow": true, "reasons": ["ok"], "obligations": {"max_token": 10}}
