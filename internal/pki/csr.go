package pki

// CSRCommonName returns the common name a CSR asks for (a node proposes its
// own node ID there), or "" when the CSR does not parse or verify.
func CSRCommonName(csrPEM []byte) string {
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return ""
	}
	return csr.Subject.CommonName
}
