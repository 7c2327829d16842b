package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// PEM block types this package reads and writes.
const (
	pemCertificate = "CERTIFICATE"
	pemCSR         = "CERTIFICATE REQUEST"
	pemPrivateKey  = "PRIVATE KEY"    // PKCS #8, what this package writes
	pemECKey       = "EC PRIVATE KEY" // SEC 1, accepted on load for keys made by openssl
)

// encodePEM wraps DER bytes in a PEM block of the given type.
func encodePEM(blockType string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
}

// decodePEM returns the DER bytes of the first PEM block, which must be of
// the wanted type. what names the data in errors ("CA certificate").
func decodePEM(data []byte, blockType, what string) ([]byte, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s is not PEM encoded", what)
	}
	if block.Type != blockType {
		return nil, fmt.Errorf("%s is a PEM %q block, want %q", what, block.Type, blockType)
	}
	return block.Bytes, nil
}

// parseCertPEM parses the first certificate in a PEM bundle.
func parseCertPEM(data []byte, what string) (*x509.Certificate, error) {
	der, err := decodePEM(data, pemCertificate, what)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", what, err)
	}
	return cert, nil
}

// parseCertsPEM parses every certificate in a PEM bundle; a CA bundle may
// hold more than one certificate while the CA is being rotated.
func parseCertsPEM(data []byte, what string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			return nil, fmt.Errorf("%s holds a PEM %q block, want only %q", what, block.Type, pemCertificate)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", what, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", what)
	}
	return certs, nil
}

// marshalKeyPEM encodes an ECDSA private key as PKCS #8 PEM.
func marshalKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return encodePEM(pemPrivateKey, der), nil
}

// parseKeyPEM reads an ECDSA private key in PKCS #8 or SEC 1 PEM.
func parseKeyPEM(data []byte, what string) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s is not PEM encoded", what)
	}
	switch block.Type {
	case pemECKey:
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", what, err)
		}
		return key, nil
	case pemPrivateKey:
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", what, err)
		}
		key, ok := parsed.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s is a %T, want an ECDSA key", what, parsed)
		}
		return key, nil
	}
	return nil, fmt.Errorf("%s is a PEM %q block, want %q", what, block.Type, pemPrivateKey)
}
