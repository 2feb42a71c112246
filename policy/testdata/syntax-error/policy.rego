package portcullis

decision := {"allow": true,
