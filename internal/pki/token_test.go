package pki

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// testFingerprint stands for a CA fingerprint; tokens do not check it is one.
var testFingerprint = strings.Repeat("ab", 32)

func TestTokenRoundTrip(t *testing.T) {
	shape := regexp.MustCompile(`^BERTH-1-[0-9a-f]{64}-[wm]-[a-z2-7]{52}$`)
	for _, role := range []Role{RoleWorker, RoleManager} {
		s, err := NewToken(testFingerprint, role)
		if err != nil {
			t.Fatalf("NewToken(%s): %v", role, err)
		}
		if !shape.MatchString(s) {
			t.Errorf("token %q does not have the documented shape", s)
		}
		tok, err := ParseToken(s)
		if err != nil {
			t.Fatalf("ParseToken(%q): %v", s, err)
		}
		if tok.Fingerprint != testFingerprint || tok.Role != role || tok.String() != s {
			t.Errorf("ParseToken(%q) = %+v, want fingerprint, role %s and the same string back", s, tok, role)
		}
		if err := tok.CheckRole(role); err != nil {
			t.Errorf("CheckRole(%s) on a %s token: %v", role, role, err)
		}
	}
}

func TestTokensAreUnique(t *testing.T) {
	a, errA := NewToken(testFingerprint, RoleWorker)
	b, errB := NewToken(testFingerprint, RoleWorker)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a == b {
		t.Fatal("two tokens share a secret")
	}
}

func TestParseTokenRefuses(t *testing.T) {
	good, err := NewToken(testFingerprint, RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := ParseToken(good)
	with := func(part int, value string) string {
		parts := strings.Split(good, "-")
		parts[part] = value
		return strings.Join(parts, "-")
	}
	tests := []struct {
		name, token, wantErr string
	}{
		{"empty", "", "want BERTH-1-"},
		{"admin token", "BERTHADM-" + tok.Secret, "want BERTH-1-"},
		{"swarm token", "SWMTKN-1-" + testFingerprint + "-" + tok.Secret, "want BERTH-1-"},
		{"extra dash", good + "-x", "want BERTH-1-"},
		{"future version", with(1, "2"), `version "2" is not supported`},
		{"short fingerprint", with(2, "abcd"), "not 64 lowercase hex"},
		{"upper-case fingerprint", with(2, strings.ToUpper(testFingerprint)), "not 64 lowercase hex"},
		{"admin role letter", with(3, "a"), `role letter "a"`},
		{"short secret", with(4, tok.Secret[1:]), "not 52 base32"},
		{"secret outside the alphabet", with(4, "1"+tok.Secret[1:]), "not 52 base32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseToken(tt.token)
			if !errors.Is(err, ErrTokenFormat) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseToken(%q) error = %v, want ErrTokenFormat containing %q", tt.token, err, tt.wantErr)
			}
		})
	}
}

func TestTokenCheckRole(t *testing.T) {
	tests := []struct {
		have, want Role
		wantErr    string
	}{
		{RoleWorker, RoleManager, "token is for a worker, not a manager"},
		{RoleManager, RoleWorker, "token is for a manager, not a worker"},
	}
	for _, tt := range tests {
		s, err := NewToken(testFingerprint, tt.have)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ParseToken(s)
		if err != nil {
			t.Fatal(err)
		}
		err = tok.CheckRole(tt.want)
		var roleErr *TokenRoleError
		if !errors.As(err, &roleErr) || err.Error() != tt.wantErr {
			t.Errorf("CheckRole(%s) on a %s token = %v, want %q", tt.want, tt.have, err, tt.wantErr)
		}
	}
}

func TestNewTokenRefuses(t *testing.T) {
	if _, err := NewToken(testFingerprint, RoleAdmin); err == nil {
		t.Error("NewToken made a join token for the admin role")
	}
	if _, err := NewToken("not-a-fingerprint", RoleWorker); err == nil {
		t.Error("NewToken accepted a malformed fingerprint")
	}
}

func TestTokenVerify(t *testing.T) {
	s, err := NewToken(testFingerprint, RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken(s)
	if err != nil {
		t.Fatal(err)
	}
	stored := HashToken(tok.Secret)
	rotated, _ := NewToken(testFingerprint, RoleWorker)
	rotatedTok, _ := ParseToken(rotated)

	tests := []struct {
		name        string
		fingerprint string
		storedHash  string
		want        error
	}{
		{"current token", testFingerprint, stored, nil},
		{"fingerprint in upper case", strings.ToUpper(testFingerprint), stored, nil},
		{"token of another cluster", strings.Repeat("cd", 32), stored, ErrWrongCluster},
		{"rotated since", testFingerprint, HashToken(rotatedTok.Secret), ErrTokenRejected},
		{"hash compared against the plaintext", testFingerprint, tok.Secret, ErrTokenRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tok.Verify(tt.fingerprint, tt.storedHash); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHashTokenAndMatches(t *testing.T) {
	h := HashToken("secret")
	if len(h) != 64 || strings.Contains(h, "secret") {
		t.Errorf("HashToken = %q, want 64 hex digits that do not reveal the secret", h)
	}
	if HashToken("secret") != h || HashToken("secreT") == h {
		t.Error("HashToken is not a deterministic function of the secret")
	}
	tests := []struct {
		a, b string
		want bool
	}{
		{h, h, true},
		{h, HashToken("other"), false},
		{h, h[:63], false},
		{"", "", true},
		{"", h, false},
	}
	for _, tt := range tests {
		if got := TokenMatches(tt.a, tt.b); got != tt.want {
			t.Errorf("TokenMatches(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestAdminToken(t *testing.T) {
	tok, err := NewAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^BERTHADM-[a-z2-7]{52}$`).MatchString(tok) {
		t.Errorf("admin token %q does not have the documented shape", tok)
	}
	other, _ := NewAdminToken()
	stored := HashToken(tok)
	tests := []struct {
		name, presented string
		want            bool
	}{
		{"the token", tok, true},
		{"another admin token", other, false},
		{"the stored hash itself", stored, false},
		{"the secret without its prefix", strings.TrimPrefix(tok, "BERTHADM-"), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AdminTokenMatches(tt.presented, stored); got != tt.want {
				t.Fatalf("AdminTokenMatches = %v, want %v", got, tt.want)
			}
		})
	}
	if IsAdminToken("BERTHADM-short") {
		t.Error("IsAdminToken accepted a token with a short secret")
	}
}
