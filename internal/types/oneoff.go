package types

// OneOff is what makes a service a one-off: a task berth run started from
// a service's spec, as docker compose run does. Its service entry sits in
// the app beside the Compose file's services under its own name (OneOffName),
// with one replica, no restart, the service's ports only when asked, and
// the command, environment and user of the run. It is no orphan: berth up
// keeps it whatever the file says, and only berth run --rm, berth rm (once
// it stopped) and berth down remove it.
type OneOff struct {
	// Of is the service of the Compose file it runs.
	Of string `json:"of"`
}

// IsOneOff reports whether berth run made the service.
func (s *Service) IsOneOff() bool { return s.OneOff != nil }

// OneOffName is the name berth run gives a one-off of service: Compose's
// "SERVICE-run-HEX" (its task is then "PROJECT-SERVICE-run-HEX-1"), with
// hex twelve random hex digits.
func OneOffName(service, hex string) string { return service + "-run-" + hex }
