package compose

import (
	"fmt"
	"slices"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// unknownKeyMessage says key is not a Compose key, and suggests the key of
// the schema at schemaURL it is closest to, when one is a typo away.
func unknownKeyMessage(schemaURL, key string) string {
	if best := closest(key, schemaKeys(schemaURL)); best != "" {
		return fmt.Sprintf("not a Compose key; did you mean %q?", best)
	}
	return msgUnknownKey
}

// schemaKeys lists the properties the schema at url allows, through its
// references and combinations.
func schemaKeys(url string) []string {
	compilerMu.Lock()
	defer compilerMu.Unlock()
	if schemaCompiler == nil {
		return nil
	}
	sch, err := schemaCompiler.Compile(url)
	if err != nil {
		return nil
	}
	seen := map[*jsonschema.Schema]bool{}
	var keys []string
	var walk func(*jsonschema.Schema)
	walk = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		for k := range s.Properties {
			keys = append(keys, k)
		}
		walk(s.Ref)
		for _, list := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf, {s.If, s.Then, s.Else}} {
			for _, sub := range list {
				walk(sub)
			}
		}
	}
	walk(sch)
	sort.Strings(keys)
	return slices.Compact(keys)
}

// closest is the candidate at the smallest edit distance from key, if that
// is small enough to be a typo (at most 2, and less than half the key).
func closest(key string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(key, c); d < bestDist && 2*d < len(key) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and
// adjacent swaps that turn a into b (a typo like "imgae" is one swap).
func editDistance(a, b string) int {
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
