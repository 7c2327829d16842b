// Package harness runs a real multi-process berth cluster for the tests in
// test/cluster: managers and agents are separate `berth` processes, each on
// its own loopback address (127.0.N.x, where every address in 127.0.0.0/8
// works on Linux without setup), each with its own data directory, talking
// to each other over the cluster's mutual TLS exactly as on separate hosts.
//
// A test builds the binaries once (BuildBerth, in TestMain), then:
//
//	c := harness.Start(t, bin, app, harness.Options{Agents: harness.Zones("a", "b", "c")})
//	leader := c.Leader(t, 10*time.Second)
//	c.MustRun(t, leader, "up", "-d", "-f", file)
//	leader.Kill(t) // kill -9; Pause and Resume send SIGSTOP and SIGCONT
//	next, took := c.WaitNewLeader(t, leader, 10*time.Second)
//
// A cluster started with Options.Partitionable runs each manager in its own
// cgroup, so c.Partition(t, m) can cut m off from the other managers with
// iptables (root and cgroup v2 needed; the test skips otherwise).
//
// A fault scenario checks the suite's invariants rather than its own (see
// invariants.go and docs/reliability.md): StartWorkload makes a bounded
// stream of writes and records the acknowledged ones, CheckWrites finds
// them on every manager afterwards, CheckManagers finds no manager bricked
// or diverged, Restarted lists the tasks a fault restarted, and a Watch
// started before the fault records nodes marked down and slots whose
// replica ran twice. Figure logs the scenario's measurements in one line.
//
// Every process, and every task process the agents started from the app
// binary (a private copy per cluster), is killed when the test ends; a
// failed test shows the end of each process's log. Waiting is always for a
// condition with a deadline (WaitFor), never a fixed sleep.
//
// The managers' API listens on a loopback address, where berth serves plain
// HTTP without authentication; the join, Raft and cluster ports are mutual
// TLS as in production.
package harness
