package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// A join token reads BERTH-1-<CA fingerprint>-<w|m>-<secret>. The fingerprint
// lets a joining node authenticate the cluster before it sends anything; the
// secret authenticates the node to the cluster; the letter says which role
// the token admits.
const (
	tokenPrefix  = "BERTH"
	tokenVersion = "1"
	secretBytes  = 32
)

// secretEncoding writes 32 random bytes as 52 lowercase letters and digits,
// easy to copy and to paste into a shell.
var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var (
	// ErrTokenFormat means the string is not a berth join token at all.
	ErrTokenFormat = errors.New("token: wrong format")
	// ErrWrongCluster means the token names another cluster's CA.
	ErrWrongCluster = errors.New("token is for another cluster: its CA fingerprint is not this cluster's")
	// ErrTokenRejected means the secret is not one the cluster issued, or
	// was rotated since.
	ErrTokenRejected = errors.New("token was not issued by this cluster or has been rotated; get a current one with `berth token worker|manager`")
)

// Token is a parsed join token.
type Token struct {
	Fingerprint string // the cluster CA's SHA-256, lowercase hex
	Role        Role   // RoleWorker or RoleManager
	Secret      string
}

// TokenRoleError means a token admits another role than the one asked for.
type TokenRoleError struct {
	Have, Want Role
}

func (e *TokenRoleError) Error() string {
	return fmt.Sprintf("token is for %s %s, not %s %s", e.Have.article(), e.Have, e.Want.article(), e.Want)
}

// NewToken creates a join token for role (worker or manager) in the cluster
// whose CA has the given fingerprint. Store HashToken of its Secret, never
// the token.
func NewToken(fingerprint string, role Role) (string, error) {
	if err := checkFingerprint(fingerprint); err != nil {
		return "", fmt.Errorf("create join token: %w", err)
	}
	if _, err := roleLetter(role); err != nil {
		return "", fmt.Errorf("create join token: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return "", fmt.Errorf("create join token: %w", err)
	}
	return Token{Fingerprint: strings.ToLower(fingerprint), Role: role, Secret: secret}.String(), nil
}

// String renders the token as a user passes it on the command line.
func (t Token) String() string {
	letter, _ := roleLetter(t.Role)
	return strings.Join([]string{tokenPrefix, tokenVersion, t.Fingerprint, letter, t.Secret}, "-")
}

// ParseToken reads a join token. Errors wrap ErrTokenFormat.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) != 5 || parts[0] != tokenPrefix {
		return Token{}, fmt.Errorf("%w: want BERTH-1-<CA fingerprint>-<w|m>-<secret>, as printed by `berth token worker|manager`", ErrTokenFormat)
	}
	if parts[1] != tokenVersion {
		return Token{}, fmt.Errorf("%w: version %q is not supported by this berth, which reads version %s", ErrTokenFormat, parts[1], tokenVersion)
	}
	fp := parts[2]
	if err := checkFingerprint(fp); err != nil || fp != strings.ToLower(fp) {
		return Token{}, fmt.Errorf("%w: the CA fingerprint is not 64 lowercase hex digits", ErrTokenFormat)
	}
	role, err := letterRole(parts[3])
	if err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrTokenFormat, err)
	}
	if b, err := secretEncoding.DecodeString(parts[4]); err != nil || len(b) != secretBytes {
		return Token{}, fmt.Errorf("%w: the secret is not %d base32 characters", ErrTokenFormat, secretEncoding.EncodedLen(secretBytes))
	}
	return Token{Fingerprint: fp, Role: role, Secret: parts[4]}, nil
}

// CheckRole returns a *TokenRoleError unless the token admits want. A node
// checks it before dialing, so `berth server --join` with a worker token
// fails at once with a clear message.
func (t Token) CheckRole(want Role) error {
	if t.Role != want {
		return &TokenRoleError{Have: t.Role, Want: want}
	}
	return nil
}

// Verify is the manager's check of a presented token: it must name this
// cluster's CA, and its secret must hash to secretHash, the stored
// HashToken of the current secret for the token's role.
func (t Token) Verify(fingerprint, secretHash string) error {
	if t.Fingerprint != strings.ToLower(fingerprint) {
		return ErrWrongCluster
	}
	if !TokenMatches(HashToken(t.Secret), secretHash) {
		return ErrTokenRejected
	}
	return nil
}

// TokenMatches compares two secrets, or two hashes of secrets, in time that
// does not depend on where they differ, so a caller cannot guess a stored
// value byte by byte from response times.
func TokenMatches(presented, expected string) bool {
	return subtle.ConstantTimeCompare([]byte(presented), []byte(expected)) == 1
}

// HashToken is what the cluster stores in place of a token secret: its
// SHA-256 in hex. A fast hash suffices because the secret is 256 random bits,
// not a password; what matters is that reading the Raft log or a snapshot
// does not reveal a token that admits a node.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random secret: %w", err)
	}
	return secretEncoding.EncodeToString(b), nil
}

func roleLetter(r Role) (string, error) {
	switch r {
	case RoleWorker:
		return "w", nil
	case RoleManager:
		return "m", nil
	}
	return "", fmt.Errorf("join tokens admit workers or managers, not role %q", r)
}

func letterRole(letter string) (Role, error) {
	switch letter {
	case "w":
		return RoleWorker, nil
	case "m":
		return RoleManager, nil
	}
	return "", fmt.Errorf("role letter %q is neither w (worker) nor m (manager)", letter)
}
