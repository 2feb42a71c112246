package portcullis

# Two complete definitions that both hold: an eval_conflict_error at run time.
decision := {"allow": true, "reasons": ["a"], "obligations": {}} if input.action

decision := {"allow": false, "reasons": ["b"], "obligations": {}} if input.action
