package portcullis

decision := "allow"
