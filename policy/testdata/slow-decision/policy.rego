package portcullis

# About 25 million iterations: far beyond any sane timeout.
decision := {"allow": n > 0, "reasons": ["slow"], "obligations": {}} if {
	n := count([1 | some i in numbers.range(1, 5000); some j in numbers.range(1, 5000); i != j])
}
