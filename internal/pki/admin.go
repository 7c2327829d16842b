package pki

import (
	"fmt"
	"strings"
)

// adminTokenPrefix starts every admin token, so a server can tell one from
// other bearer credentials and a leaked token is easy to search for.
const adminTokenPrefix = "BERTHADM-"

// NewAdminToken creates a credential for a user of the API, shown once (at
// bootstrap) and stored as HashToken of the whole token.
func NewAdminToken() (string, error) {
	secret, err := newSecret()
	if err != nil {
		return "", fmt.Errorf("create admin token: %w", err)
	}
	return adminTokenPrefix + secret, nil
}

// IsAdminToken reports whether s has the shape of an admin token.
func IsAdminToken(s string) bool {
	secret, ok := strings.CutPrefix(s, adminTokenPrefix)
	if !ok {
		return false
	}
	b, err := secretEncoding.DecodeString(secret)
	return err == nil && len(b) == secretBytes
}

// AdminTokenMatches reports whether presented is the admin token whose
// stored hash is storedHash, in constant time.
func AdminTokenMatches(presented, storedHash string) bool {
	return IsAdminToken(presented) && TokenMatches(HashToken(presented), storedHash)
}
