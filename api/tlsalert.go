package api

import "strings"

// peerAlertPrefix starts the text of an alert a TLS peer sent. crypto/tls
// does not export that alert (tls.AlertError is QUIC's), so its text is all
// there is to tell a refused handshake by.
const peerAlertPrefix = "remote error: tls: "

// PeerAlert returns the words of the TLS alert the peer sent to end the
// handshake ("bad certificate", "certificate required", ...), and whether
// err carries one. The CLI and the agent tell a manager's refusal of their
// certificate by it.
func PeerAlert(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	_, alert, ok := strings.Cut(err.Error(), peerAlertPrefix)
	return strings.TrimSpace(alert), ok
}
