// Package harness runs berth the way a user does, for the end-to-end tests
// and the benchmarks: a real `berth server --dev` process with its own data
// directory and ports, the berth CLI as separate processes, and the Docker
// engine through the docker CLI.
//
// A test builds the binary once (BuildBerth, usually in TestMain), starts a
// cluster per test, and waits for conditions with deadlines:
//
//	harness.CleanupDocker(t, "e2e-x")          // removes leftovers at the end
//	c := harness.StartCluster(t, bin)          // stopped when t ends, first
//	c.MustRun(t, dir, "up", "-p", "e2e-x", "-f", file)
//	harness.WaitFor(t, time.Minute, "web runs", c.ExpectRunning(t, "e2e-x", "web", 3))
//
// Nothing here sleeps to synchronise: every wait polls a condition until a
// deadline and fails with the last reason the condition gave.
package harness
