// Package pki holds the cluster's cryptography: its certificate authority,
// node certificates, the TLS configurations built on them, join tokens, admin
// tokens, and the sealing of secrets at rest. It uses the standard library
// only, ECDSA P-256 keys, AES-256-GCM and TLS 1.3.
//
// # Who holds what
//
// The first manager creates the cluster CA (NewCA). Only managers hold its
// key, and they keep it in the replicated state sealed (Sealer). The sealing
// key must never enter Raft: managers keep it in their data directories and
// hand it to a joining manager over mutual TLS, so a leaked Raft snapshot or
// log reveals neither the CA key nor any secret.
//
// Every node, manager or worker, holds ca.crt, node.crt and node.key (0600)
// in its data directory (SaveIdentity, LoadIdentity). A node's certificate
// names its node ID (CN) and role (OU) as the CA decided them; the role's
// DNS name ("berth-manager", "berth-worker", "berth-admin") is what peers
// verify, since addresses in a certificate are only what the node asked for.
//
// # How a node joins
//
// A join token (NewToken) reads BERTH-1-<CA fingerprint>-<w|m>-<secret>. The
// joining node:
//
//  1. parses the token and checks its role (ParseToken, Token.CheckRole);
//  2. dials a manager with PinnedTLS(token.Fingerprint): it has no CA yet,
//     so it accepts the manager only if the manager's chain verifies against
//     the CA whose SHA-256 is in the token. An impostor cannot pass without
//     the CA's key, so the token's secret is never sent to one;
//  3. sends the token and a CSR (NewKeyAndCSR) over that connection. The
//     manager checks the token (Token.Verify against the stored hash), picks
//     the node ID and signs (CA.SignCSR) with the role the token admits;
//  4. saves the CA, its certificate and its key (SaveIdentity), and from then
//     on speaks only mutual TLS through a Live (NewLive), which renewal
//     keeps current: Live.ServerTLS to listen,
//     Live.ClientTLS(RoleManager.ServerName()) to dial a manager.
//
// A certificate from the cluster CA proves membership, not a role: a worker's
// verifies as well as a manager's. Listeners that serve one role check it,
// the Raft transport with Live.ServerTLSFor(check, RoleManager). A listener that
// also admits joining nodes, or users with an admin token (who dial with
// CAClientTLS), uses Live.ServerTLS(tls.VerifyClientCertIfGiven, check) and
// authorises each request with PeerIdentity, which fails with
// ErrNoCertificate when no cluster certificate was shown.
//
// # Tokens and secrets at rest
//
// The cluster stores HashToken of each token secret, never the token, and
// compares in constant time; rotating a token replaces the stored hash, and
// the old token stops admitting nodes. Admin tokens (NewAdminToken) are shown
// once at bootstrap and stored the same way. Secrets and the CA key are
// stored as Sealer.Seal(value, context), the context naming what the value is
// so a sealed blob copied onto another record does not open.
package pki
