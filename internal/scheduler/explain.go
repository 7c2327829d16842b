package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// explain runs every node through the pipeline and summarises why the
// service's task fits none of them, e.g.
// "0/5 nodes available: 3 constraint node.labels.zone==b, 2 insufficient memory".
// Reasons are ordered most frequent first, then by pipeline order.
func (c *Cluster) explain(v *serviceView, svcID string) string {
	if c.live == 0 {
		return "no nodes in the cluster"
	}
	type tally struct {
		r     reject
		text  string
		count int
	}
	var tallies []*tally
	byText := map[string]*tally{}
	feasible := 0
	for idx, n := range c.nodes {
		if n.dead {
			continue
		}
		r := v.check(n, c.serviceTasks(svcID, int32(idx)))
		if r.ok() {
			feasible++
			continue
		}
		text := v.describe(r)
		t := byText[text]
		if t == nil {
			t = &tally{r: r, text: text}
			byText[text] = t
			tallies = append(tallies, t)
		}
		t.count++
	}
	slices.SortFunc(tallies, func(a, b *tally) int {
		return cmp.Or(
			cmp.Compare(b.count, a.count),
			cmp.Compare(a.r.stage, b.r.stage),
			cmp.Compare(a.r.arg, b.r.arg),
		)
	})
	parts := make([]string, len(tallies))
	for i, t := range tallies {
		parts[i] = fmt.Sprintf("%d %s", t.count, t.text)
	}
	return fmt.Sprintf("%d/%d nodes available: %s", feasible, c.live, strings.Join(parts, ", "))
}
