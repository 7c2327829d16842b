package pki

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

func newTestSealer(t *testing.T) *Sealer {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := newTestSealer(t)
	tests := []struct {
		name            string
		plaintext, data []byte
	}{
		{"secret with context", []byte("db password"), []byte("app/web/secret/db")},
		{"empty plaintext", nil, []byte("ctx")},
		{"no additional data", []byte("ca key"), nil},
		{"large", bytes.Repeat([]byte{7}, 1<<16), []byte("big")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.Seal(tt.plaintext, tt.data)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if len(tt.plaintext) > 4 && bytes.Contains(sealed, tt.plaintext) {
				t.Fatal("sealed data contains the plaintext")
			}
			got, err := s.Open(sealed, tt.data)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	s := newTestSealer(t)
	a, errA := s.Seal([]byte("same"), nil)
	b, errB := s.Seal([]byte("same"), nil)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if bytes.Equal(a, b) {
		t.Fatal("sealing the same plaintext twice gave the same bytes")
	}
	nonce := func(sealed []byte) []byte { return sealed[1 : 1+s.aead.NonceSize()] }
	if bytes.Equal(nonce(a), nonce(b)) {
		t.Fatal("two seals share a nonce")
	}
}

func TestOpenDetectsTampering(t *testing.T) {
	s := newTestSealer(t)
	data := []byte("app/web/secret/db")
	sealed, err := s.Seal([]byte("db password"), data)
	if err != nil {
		t.Fatal(err)
	}
	// Every byte matters: version, nonce, ciphertext and tag.
	for i := range sealed {
		flipped := bytes.Clone(sealed)
		flipped[i] ^= 0x01
		if _, err := s.Open(flipped, data); !errors.Is(err, ErrSealedTampered) {
			t.Fatalf("Open with byte %d flipped = %v, want ErrSealedTampered", i, err)
		}
	}
	other := newTestSealer(t)
	cases := map[string]func() ([]byte, error){
		"wrong key":             func() ([]byte, error) { return other.Open(sealed, data) },
		"other additional data": func() ([]byte, error) { return s.Open(sealed, []byte("app/web/secret/api")) },
		"truncated":             func() ([]byte, error) { return s.Open(sealed[:len(sealed)-1], data) },
		"too short":             func() ([]byte, error) { return s.Open(sealed[:5], data) },
		"empty":                 func() ([]byte, error) { return s.Open(nil, data) },
	}
	for name, open := range cases {
		if got, err := open(); !errors.Is(err, ErrSealedTampered) || got != nil {
			t.Errorf("%s: Open = %q, %v; want ErrSealedTampered", name, got, err)
		}
	}
}

func TestNewSealerRefusesBadKeys(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte key", n)
		}
	}
}

func TestNewKey(t *testing.T) {
	a, errA := NewKey()
	b, errB := NewKey()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if len(a) != KeySize || bytes.Equal(a, b) {
		t.Fatalf("NewKey gave %d bytes, equal twice: %v; want %d fresh random bytes", len(a), bytes.Equal(a, b), KeySize)
	}
}

// TestDigestIsKeyed: a secret's digest detects change under one cluster's
// key, but is not the bare SHA-256 an offline guesser could check against,
// and differs under another cluster's key and for another secret's name.
func TestDigestIsKeyed(t *testing.T) {
	a, b := newTestSealer(t), newTestSealer(t)
	secret, ad := []byte("hunter2"), []byte("berth:secret:app/db")
	bare := sha256.Sum256(secret)
	tests := []struct {
		name  string
		x, y  string
		equal bool
	}{
		{"same input, same key", a.Digest(secret, ad), a.Digest(secret, ad), true},
		{"changed secret", a.Digest(secret, ad), a.Digest([]byte("hunter3"), ad), false},
		{"another cluster's key", a.Digest(secret, ad), b.Digest(secret, ad), false},
		{"another secret's name", a.Digest(secret, ad), a.Digest(secret, []byte("berth:secret:app/db2")), false},
		{"not the bare SHA-256", a.Digest(secret, ad), hex.EncodeToString(bare[:]), false},
		{"no shift between name and data", a.Digest([]byte("b"), []byte("a")), a.Digest(nil, []byte("ab")), false},
	}
	for _, tt := range tests {
		if (tt.x == tt.y) != tt.equal {
			t.Errorf("%s: equal = %v, want %v", tt.name, tt.x == tt.y, tt.equal)
		}
	}
}
