package overlay

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// The overlay's rules live in chains of its own, so converging them is
// rewriting each chain whole (atomically, with iptables-restore) and
// removing them is deleting the chains and the jumps to them. Every
// rule carries the comment, so `iptables-save | grep "berth overlay"`
// shows all of them.
const (
	filterChain = "BERTH-OVERLAY"
	natChain    = "BERTH-OVERLAY-NAT"
	inChain     = "BERTH-OVERLAY-IN"
	rawChain    = "BERTH-OVERLAY-RAW"
	comment     = `-m comment --comment "berth overlay"`
)

// hook is a jump from a built-in chain to one of the overlay's.
type hook struct{ table, from, to string }

// hooks, in the order their chains are written: a chain jumped to from
// another of the overlay's (vipFilter, from filterChain) comes first.
var hooks = []hook{
	{"filter", "OUTPUT", vipFilter}, {"filter", "FORWARD", filterChain}, {"nat", "POSTROUTING", natChain},
	{"filter", "INPUT", inChain}, {"nat", "PREROUTING", vipNat}, {"nat", "OUTPUT", vipNatOut},
	{"raw", "PREROUTING", rawChain}, {"raw", "OUTPUT", rawChain},
}

// tablePasses are the tables in the order convergeRules writes and hooks
// them, each pass whole before the next. The raw table's rules only spare
// conntrack entries: it goes last, so a host that cannot have it (a
// kernel without the table) still gets the rules the overlay needs, and
// the error.
var tablePasses = [][]string{{"filter", "nat"}, {"raw"}}

// wantRules returns each chain's rules as `iptables -S` prints them.
func (o *Overlay) wantRules(d Desired) map[string][]string {
	want := map[string][]string{filterChain: {"-N " + filterChain}, natChain: {"-N " + natChain}, inChain: {"-N " + inChain}}
	want[rawChain] = o.notrackRules()
	o.wantVIPRules(d, want)
	o.wantLocalPortRules(d, want)
	// What is left addressed to a VIP was not DNATed: refused, before
	// the overlay's ACCEPT of traffic inside a subnet would let it by.
	want[filterChain] = append(want[filterChain], fmt.Sprintf("-A %s %s -j %s", filterChain, comment, vipFilter))
	want[natChain] = append(want[natChain], o.hairpinRules(d, !o.bridgeNetfilter())...)
	for _, n := range d.Networks {
		s := n.Subnet.String()
		match := fmt.Sprintf("-s %s -d %s %s -j ACCEPT", s, s, comment)
		want[filterChain] = append(want[filterChain], fmt.Sprintf("-A %s %s", filterChain, match))
		want[natChain] = append(want[natChain], fmt.Sprintf("-A %s %s", natChain, match))
	}
	for _, dir := range []string{"-i", "-o"} {
		want[filterChain] = append(want[filterChain], fmt.Sprintf("-A %s %s %s %s -j DROP", filterChain, dir, o.cfg.Device, comment))
	}
	// VXLAN carries no authentication: whoever can send UDP to the port
	// could put frames on the overlay. Only the peers may.
	udp := fmt.Sprintf("-p udp -m udp --dport %d %s", o.cfg.Port, comment)
	for _, p := range d.Peers {
		want[inChain] = append(want[inChain], fmt.Sprintf("-A %s -s %s/32 %s -j ACCEPT", inChain, p.Underlay, udp))
	}
	want[inChain] = append(want[inChain], fmt.Sprintf("-A %s %s -j DROP", inChain, udp))
	return want
}

// notrackRules keep the VXLAN packets themselves (UDP to the overlay's
// port, to and from this node's underlay address) out of conntrack.
// Nothing needs them tracked: BERTH-OVERLAY-IN accepts peers by address
// alone, and no NAT is meant for them (a local port's DNAT of the same UDP
// port would have taken them off the device). Tracked, each inner flow
// (the device gives each its own source port) took an entry in both
// nodes' tables, against nf_conntrack_max beside the inner flow's own.
// The frames inside are still tracked, the VIPs' DNAT and the SNAT of
// the node's own connections need them: the device resets a packet's
// conntrack state as it encapsulates and as it decapsulates (TestVXLANUntracked).
// It changed no throughput measurably (docs/benchmarks.md, "Networking
// across hosts"): with GSO a lookup is per 64 KB, not per frame.
func (o *Overlay) notrackRules() []string {
	rules := []string{"-N " + rawChain}
	for _, dir := range []string{"-d", "-s"} { // in (PREROUTING), out (OUTPUT)
		rules = append(rules, fmt.Sprintf("-A %s %s %s/32 -p udp -m udp --dport %d %s -j CT --notrack",
			rawChain, dir, o.cfg.Underlay, o.cfg.Port, comment))
	}
	return rules
}

// convergeRules reads every table in one iptables-save, rewrites in one
// iptables-restore per table the chains that differ, and puts the jumps
// to them first. An Apply comes with every change of the network map (a
// replica that starts serving moves a VIP's rules), and on two cores a
// process per chain to read it competed with the engine's own starts.
func (o *Overlay) convergeRules(ctx context.Context, d Desired, ch *Changes) error {
	want := o.wantRules(d)
	have, err := o.save(ctx)
	if err != nil {
		return err
	}
	changed := map[string][]string{} // table -> chains to rewrite, in hook order
	for _, hk := range hooks {
		if !slices.Equal(have[hk.table].chain(hk.to), want[hk.to]) && !slices.Contains(changed[hk.table], hk.to) {
			changed[hk.table] = append(changed[hk.table], hk.to)
		}
	}
	for _, tables := range tablePasses {
		for _, table := range tables {
			if len(changed[table]) == 0 {
				continue
			}
			if err := o.restore(ctx, table, changed[table], want); err != nil {
				return err
			}
			ch.Added += len(changed[table])
		}
		for _, hk := range hooks {
			if !slices.Contains(tables, hk.table) {
				continue
			}
			if err := o.ensureFirst(ctx, hk, have[hk.table].rules[hk.from], ch); err != nil {
				return err
			}
		}
	}
	return nil
}

// savedTable is one table as iptables-save prints it: the chains it has
// and each chain's rules ("-A CHAIN ..."), as `iptables -S` prints them.
type savedTable struct {
	chains map[string]bool
	rules  map[string][]string
}

// chain is the chain as wantRules says it ("-N CHAIN", then its rules),
// or nil when the table has no such chain.
func (t savedTable) chain(name string) []string {
	if !t.chains[name] {
		return nil
	}
	return append([]string{"-N " + name}, t.rules[name]...)
}

// save reads every table there is, by name.
func (o *Overlay) save(ctx context.Context) (map[string]savedTable, error) {
	out, err := o.command(ctx, "iptables-save").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("read the tables (iptables-save: %s): %w", bytes.TrimSpace(out), err)
	}
	return parseSave(string(out)), nil
}

// parseSave reads iptables-save's output, each table ("*nat" to
// "COMMIT") by name. A table not there yet (raw, before the overlay's
// first rules in it) is missing, and reads as empty.
func parseSave(out string) map[string]savedTable {
	tables := map[string]savedTable{}
	var t savedTable
	for _, l := range lines(out) {
		switch {
		case strings.HasPrefix(l, "*"):
			t = savedTable{chains: map[string]bool{}, rules: map[string][]string{}}
			tables[l[1:]] = t
		case t.chains == nil: // a comment, or nothing of a table
		case strings.HasPrefix(l, ":"):
			if name, _, ok := strings.Cut(l[1:], " "); ok {
				t.chains[name] = true
			}
		case strings.HasPrefix(l, "-A "):
			if name, _, ok := strings.Cut(l[3:], " "); ok {
				t.rules[name] = append(t.rules[name], l)
			}
		}
	}
	return tables
}

// ensureFirst makes the jump to hk.to the first rule of hk.from, and the
// only jump there. First, because Docker, restarted, puts its own jumps
// first, and its FORWARD rules accept what the overlay must drop (a port
// published by another network's container). rules are hk.from's, as
// read before this Apply wrote anything (it writes only its own chains).
func (o *Overlay) ensureFirst(ctx context.Context, hk hook, rules []string, ch *Changes) error {
	jump := fmt.Sprintf("-A %s %s -j %s", hk.from, comment, hk.to)
	n := 0
	for _, r := range rules {
		if r == jump {
			n++
		}
	}
	if n == 1 && rules[0] == jump {
		return nil
	}
	for ; n > 0; n-- {
		if out, err := o.iptables(ctx, append([]string{"-t", hk.table, "-D"}, hookArgs(hk)...)...); err != nil {
			return fmt.Errorf("move the overlay's jump in %s %s (%s): %w", hk.table, hk.from, strings.TrimSpace(out), err)
		}
	}
	insert := append([]string{"-t", hk.table, "-I", hk.from, "1"}, hookArgs(hk)[1:]...)
	if out, err := o.iptables(ctx, insert...); err != nil {
		return fmt.Errorf("hook the overlay's rules into %s %s (%s): %w", hk.table, hk.from, strings.TrimSpace(out), err)
	}
	ch.Added++
	return nil
}

// hookArgs is the jump rule without its verb: FROM matches -j TO.
func hookArgs(hk hook) []string {
	return []string{hk.from, "-m", "comment", "--comment", "berth overlay", "-j", hk.to}
}

// restore replaces the rules of each of table's chains with want's, in one
// transaction. Every chain is declared first, so a chain may jump to one
// made in the same transaction.
func (o *Overlay) restore(ctx context.Context, table string, chains []string, want map[string][]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s\n", table)
	for _, c := range chains {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, c := range chains {
		fmt.Fprintf(&b, "-F %s\n", c)
		for _, r := range want[c][1:] { // [0] is "-N chain"
			b.WriteString(r + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	c := o.command(ctx, "iptables-restore", "-w", "--noflush")
	c.Stdin = strings.NewReader(b.String())
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("write the overlay's %s rules (iptables-restore: %s): %w", table, bytes.TrimSpace(out), err)
	}
	return nil
}

// removeRules deletes the jumps first, then empties every chain, then
// deletes them: a chain still jumped to (vipFilter, from filterChain)
// cannot be deleted.
func (o *Overlay) removeRules(ctx context.Context) error {
	var errs []string
	for _, hk := range hooks {
		args := append([]string{"-t", hk.table, "-D"}, hookArgs(hk)...)
		for {
			if _, err := o.iptables(ctx, args...); err != nil {
				break // no (more) jump
			}
		}
	}
	for _, verb := range []string{"-F", "-X"} {
		done := map[string]bool{}
		for _, hk := range hooks {
			if done[hk.to] {
				continue
			}
			done[hk.to] = true
			if _, err := o.iptables(ctx, "-t", hk.table, "-S", hk.to); err != nil {
				continue // no chain
			}
			if out, err := o.iptables(ctx, "-t", hk.table, verb, hk.to); err != nil {
				errs = append(errs, fmt.Sprintf("%s %s %s: %s", hk.table, verb, hk.to, out))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove the overlay's rules: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (o *Overlay) iptables(ctx context.Context, args ...string) (string, error) {
	out, err := o.command(ctx, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	return string(out), err
}

// command runs name in the overlay's namespace: through nsenter when it
// is not the caller's own.
func (o *Overlay) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if o.cfg.NetNS == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + o.cfg.NetNS, "--", name}, args...)...)
}

func lines(s string) []string {
	var ls []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}
