package harness

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testkit"
)

// HTTPGet GETs url until it answers 200 or timeout passes, and returns the
// body.
func HTTPGet(tb testing.TB, url string, timeout time.Duration) string {
	tb.Helper()
	var body string
	client := &http.Client{Timeout: 5 * time.Second}
	WaitFor(tb, timeout, "GET "+url, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s: %s", resp.Status, b)
		}
		body = string(b)
		return nil
	})
	return body
}

// HTTPStatus GETs url once and returns the status code (0 when nothing
// answered) and the body (or the error).
func HTTPStatus(url string) (int, string) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return testkit.FreePort(tb)
}
