package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// FuzzDecodeApp feeds arbitrary bodies through the app decoder and
// validator: whatever arrives, the answer is an app or a 4xx, never a panic.
func FuzzDecodeApp(f *testing.F) {
	f.Add(`{"name":"a","services":[{"name":"web","image":"x","replicas":2,"ports":[{"target":80,"published":8080,"protocol":"tcp"}]}]}`)
	f.Add(`{"services":[{"name":"w","driver":"exec","command":["sleep","1"],"depends_on":[{"service":"w","condition":"service_started","required":true}]}]}`)
	f.Add(`{"services":[{"name":"w","image":"x","mounts":[{"type":"volume","source":"v","target":"/d"}]}],"volumes":{"v":null}}`)
	f.Add(`{"secrets":{"s":{"data":"AAAA"}},"services":null}`)
	f.Add(`[1,2,3]`)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPut, "/v1/apps/a", strings.NewReader(body))
		w := httptest.NewRecorder()
		var app types.App
		err := decodeJSON(w, r, api.MaxAppBytes, &app)
		if err == nil {
			if app.Name == "" {
				app.Name = "a"
			}
			err = validateApp(&app)
		}
		if err == nil {
			return
		}
		ae, ok := err.(*apiError)
		if !ok || ae.status < 400 || ae.status >= 500 || ae.msg == "" {
			t.Fatalf("body %q: error %v is not a 4xx with a message", body, err)
		}
	})
}
