package imagepush

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Refusal is the cluster registry refusing a request of the push (or the
// proxy failing to reach it), in the registry's own words.
type Refusal struct {
	Method, Path string
	Status       int
	Code         string // the registry's error code: UNAUTHORIZED, DENIED, ...
	Message      string
	unreachable  bool
}

// refusal reads a registry error answer ({"errors":[{"code","message"}]}).
func refusal(method, path string, status int, body []byte) *Refusal {
	r := &Refusal{Method: method, Path: path, Status: status}
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	switch err := json.Unmarshal(body, &doc); {
	case err == nil && len(doc.Errors) > 0:
		r.Code, r.Message = doc.Errors[0].Code, doc.Errors[0].Message
	case err != nil: // not a registry's answer: a proxy's page, say
		r.Message = strings.TrimSpace(string(body))
	}
	if len(r.Message) > 300 {
		r.Message = r.Message[:300] + "..."
	}
	return r
}

// Error is one sentence that says what the user can do.
func (r *Refusal) Error() string {
	said := r.said()
	switch {
	case r.unreachable:
		return r.Message + "; check that the manager runs and retry"
	case r.Status == http.StatusUnauthorized:
		return "the cluster registry refused the push without an admin credential" + said +
			": use a context with the admin token or an admin certificate (berth context create)"
	case r.Status == http.StatusRequestEntityTooLarge:
		return "the cluster registry refused a layer as too large" + said +
			": make the image smaller, or raise the managers' --registry-max-size"
	case r.Code == "DENIED" && r.Message != "":
		// The registry's sentence says what to do (a full registry, a
		// worker's certificate).
		return "the cluster registry refused the push: " + r.Message
	case r.Status == http.StatusForbidden:
		return "the cluster registry refused the push" + said + ": only an admin may push; use the admin token or certificate"
	}
	return fmt.Sprintf("the cluster registry answered %d %s to %s %s%s",
		r.Status, strings.ToLower(http.StatusText(r.Status)), r.Method, r.Path, said)
}

// said is the registry's message as a parenthesis, or nothing.
func (r *Refusal) said() string {
	if r.Message == "" {
		return ""
	}
	return " (" + strings.TrimSuffix(r.Message, ".") + ")"
}
