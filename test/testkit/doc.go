// Package testkit is what the suites' harnesses (test/e2e, test/cluster)
// and test/hosts share, so that every suite runs the CLI, waits and reads
// the CLI's files the same way:
//
//	r, err := testkit.RunCLI(t, time.Minute, bin, dir, home, nil, "ps")
//	testkit.WaitFor(t, time.Minute, "web runs", cond) // polls cond, never a fixed sleep
//	cur, ctxs, err := testkit.ReadContexts(home)      // what `berth context` wrote
//
// A CLI run gets IsolatedEnv(home): the user's own berth state, contexts
// and address are never read nor written. The package imports no harness
// and nothing heavy of berth's, so importing it costs a suite nothing.
package testkit
