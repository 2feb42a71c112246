package portcullis

allow := true
