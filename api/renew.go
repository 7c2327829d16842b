package api

import (
	"context"
	"net/http"
)

// PathNodeRenew is where a node renews its certificate, over mutual TLS
// with the certificate it renews (agents; the cluster port).
const PathNodeRenew = "/v1/nodes/{id}/renew" // POST RenewRequest

// RenewRequest asks for a new certificate for the node the presented one
// names, with the same role, for the key of CSR.
type RenewRequest struct {
	CSR []byte `json:"csr"` // PEM
}

// RenewResponse is the new certificate and the CA that signed it.
type RenewResponse struct {
	CertPEM []byte `json:"cert_pem"`
	CAPEM   []byte `json:"ca_pem"`
}

// RenewCert asks the manager to sign a new certificate for nodeID.
func (c *Client) RenewCert(ctx context.Context, nodeID string, csrPEM []byte) (*RenewResponse, error) {
	var r RenewResponse
	_, err := c.do(ctx, http.MethodPost, fill(PathNodeRenew, nodeID), nil, RenewRequest{CSR: csrPEM}, &r)
	return &r, err
}

// CloseIdleConnections closes kept-alive connections, so the next request
// makes a new one (with a renewed certificate, say).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
