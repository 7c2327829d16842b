package pki

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the length of a sealing key: AES-256.
const KeySize = 32

// sealVersion is the first byte of every sealed blob, so the format can
// change (a key ID for rotation, another cipher) while old blobs still open.
const sealVersion byte = 1

// ErrSealedTampered means sealed data did not authenticate: it was altered,
// truncated, bound to other additional data, or sealed under another key.
var ErrSealedTampered = errors.New("sealed data was tampered with or sealed under another key")

// Sealer encrypts and authenticates secrets at rest (cluster secrets and the
// CA key in Raft) with AES-256-GCM.
//
// Nonces are random, 96 bits: keep one key to well under 2^32 seals, which a
// cluster's secrets and key rotations never approach.
type Sealer struct {
	aead cipher.AEAD
	// digestKey keys Digest. It is derived from the sealing key, so every
	// manager has it and nothing holding only Raft's data does.
	digestKey []byte
}

// NewKey returns a fresh random sealing key.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create sealing key: %w", err)
	}
	return key, nil
}

// NewSealer returns a Sealer for a key made by NewKey.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("sealing key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("create sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create sealer: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("berth:digest-key"))
	return &Sealer{aead: aead, digestKey: mac.Sum(nil)}, nil
}

// Digest is a keyed hash (HMAC-SHA256) of data bound to additionalData, in
// hex: equal for equal inputs under one cluster's key, so a changed secret
// can be told from an unchanged one, yet worthless offline: without the key
// a guessable secret cannot be checked against it.
func (s *Sealer) Digest(data, additionalData []byte) string {
	mac := hmac.New(sha256.New, s.digestKey)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(additionalData)))
	mac.Write(n[:])
	mac.Write(additionalData)
	mac.Write(data)
	return hex.EncodeToString(mac.Sum(nil))
}

// Seal encrypts plaintext and binds it to additionalData, which is not
// stored: pass the same value to Open. Use what the secret is for (its name
// and app, say) so a sealed value copied to another record fails to open.
// The result is version byte, nonce, ciphertext and tag.
func (s *Sealer) Seal(plaintext, additionalData []byte) ([]byte, error) {
	nonceSize := s.aead.NonceSize()
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: read random nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:], plaintext, sealedAD(out[0], additionalData)), nil
}

// Open decrypts what Seal produced with the same key and additional data.
// Any failure wraps ErrSealedTampered.
func (s *Sealer) Open(sealed, additionalData []byte) ([]byte, error) {
	nonceSize := s.aead.NonceSize()
	if len(sealed) < 1+nonceSize+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is too short to be sealed data", ErrSealedTampered, len(sealed))
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrSealedTampered, sealed[0])
	}
	nonce, ciphertext := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	plaintext, err := s.aead.Open(nil, nonce, ciphertext, sealedAD(sealed[0], additionalData))
	if err != nil {
		return nil, ErrSealedTampered
	}
	return plaintext, nil
}

// sealedAD authenticates the version byte along with the caller's data, so
// a blob cannot be passed off as another format version.
func sealedAD(version byte, additionalData []byte) []byte {
	return append([]byte{version}, additionalData...)
}
