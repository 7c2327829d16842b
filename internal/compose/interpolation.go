package compose

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// compose-go reports a value that, once interpolated, has the wrong type as
// "error while interpolating services.web.deploy.replicas: failed to cast
// to expected type: strconv.Atoi: parsing "two": invalid syntax", one per
// value, joined. interpolationErrors turns each into a keyError in the
// user's words ("services.web.deploy.replicas: "two" is not a whole
// number"), or returns nil when err is not made of these.
func interpolationErrors(err error) []error {
	if err == nil {
		return nil
	}
	var out []error
	for _, leaf := range leafErrorsOf(err) {
		m := castErrorRE.FindStringSubmatch(leaf.Error())
		if m == nil {
			return nil
		}
		out = append(out, &keyError{path: m[1], err: errors.New(castProblem(leaf, m[2]))})
	}
	return sortErrors(out)
}

var castErrorRE = regexp.MustCompile(`^error while interpolating (\S+): failed to cast to expected type: (.*)$`)

var invalidBoolRE = regexp.MustCompile(`^invalid boolean: (.*)$`)

// castProblem says what the value should have been.
func castProblem(err error, cause string) string {
	var num *strconv.NumError
	switch {
	case errors.As(err, &num) && num.Func == "ParseFloat":
		return fmt.Sprintf("%q is not a number", num.Num)
	case errors.As(err, &num):
		return fmt.Sprintf("%q is not a whole number", num.Num)
	}
	if m := invalidBoolRE.FindStringSubmatch(cause); m != nil {
		return fmt.Sprintf("%q is not true or false", m[1])
	}
	return cause
}

// leafErrorsOf flattens errors.Join trees (and fmt.Errorf wrappers around
// them) into their leaves.
func leafErrorsOf(err error) []error {
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, leafErrorsOf(e)...)
		}
		return out
	}
	if castErrorRE.MatchString(err.Error()) {
		return []error{err}
	}
	if inner := errors.Unwrap(err); inner != nil {
		return leafErrorsOf(inner)
	}
	return []error{err}
}
