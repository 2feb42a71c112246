// Package config reads and checks the gateway's YAML configuration.
//
// A configuration is decoded strictly (unknown fields are errors), defaults
// are filled in, and every value is checked before the gateway starts
// listening. An error names the field by its YAML path and says what is
// wrong with it:
//
//	config: providers[0].api_key_env: environment variable OPENAI_KEY is not set
//
// The format is documented field by field in docs/configuration.md; an
// example lives in examples/config/portcullis.yaml.
package config
