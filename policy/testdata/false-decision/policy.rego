# The decision is false: a value, not undefined, and not an object.
package portcullis

decision := false
