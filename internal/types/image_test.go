package types

import (
	"strings"
	"testing"
)

func TestImageRepo(t *testing.T) {
	for _, tc := range []struct {
		app, svc, want string
		ok             bool
	}{
		{"shop", "web", "shop/web", true},
		{"my-app", "api_v2", "my-app/api_v2", true},
		{"a.b", "c", "a.b/c", true},
		{"Shop", "Web", "shop/web", true},
		{"sh op", "web", "", false},
		{"shop", "-web", "", false},
		{"shop", "web-", "", false},
		{"", "web", "", false},
		{"shop", "w/b", "", false},
	} {
		got, err := ImageRepo(tc.app, tc.svc)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ImageRepo(%q, %q) = %q, %v", tc.app, tc.svc, got, err)
		}
	}
	if !ValidDigest("sha256:"+strings.Repeat("0", 64)) || ValidDigest("sha256:"+strings.Repeat("G", 64)) || ValidDigest("md5:00") {
		t.Error("ValidDigest")
	}
}
