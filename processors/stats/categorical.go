package stats

import (
	"cmp"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow/array"
)

// Add records one value. s is kept as a map key when it is new: pass a string
// the caller will not mutate (any ordinary Go string).
func (c *CategoricalState) Add(s string) {
	c.Count++
	if n, ok := c.Counts[s]; ok {
		c.Counts[s] = n + 1
		return
	}
	c.addNew(s, 1)
}

// addNew adds n occurrences of a value not in Counts, or to Other when Counts
// is full.
func (c *CategoricalState) addNew(s string, n uint64) {
	if len(c.Counts) >= MaxCategories {
		c.Other += n
		return
	}
	if c.Counts == nil {
		c.Counts = make(map[string]uint64)
	}
	c.Counts[s] = n
}

// Merge adds the values summarised by o to c. Values of o already in c are
// always added to their count. When the new values of o do not all fit under
// MaxCategories, those kept are the most frequent in o (ties by value), the
// rest go to Other: the result does not depend on map iteration order.
func (c *CategoricalState) Merge(o *CategoricalState) {
	c.Count += o.Count
	c.Missing += o.Missing
	c.Other += o.Other
	var fresh []string
	for v, n := range o.Counts {
		if m, ok := c.Counts[v]; ok {
			c.Counts[v] = m + n
		} else {
			fresh = append(fresh, v)
		}
	}
	if len(c.Counts)+len(fresh) > MaxCategories {
		sortByCount(fresh, o.Counts)
	}
	for _, v := range fresh {
		c.addNew(v, o.Counts[v])
	}
}

// TopK returns the k most frequent values with their counts, by count
// descending then value ascending, and the count of all other values
// (including Other).
func (c *CategoricalState) TopK(k int) (values []string, counts []uint64, other uint64) {
	values = make([]string, 0, len(c.Counts))
	for v := range c.Counts {
		values = append(values, v)
	}
	sortByCount(values, c.Counts)
	k = max(0, min(k, len(values)))
	other = c.Other
	for _, v := range values[k:] {
		other += c.Counts[v]
	}
	values = values[:k:k]
	counts = make([]uint64, k)
	for i, v := range values {
		counts[i] = c.Counts[v]
	}
	return values, counts, other
}

func sortByCount(values []string, counts map[string]uint64) {
	slices.SortFunc(values, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

func (c *CategoricalState) clone() CategoricalState {
	n := *c
	if c.Counts != nil {
		n.Counts = make(map[string]uint64, len(c.Counts))
		for v, k := range c.Counts {
			n.Counts[v] = k
		}
	}
	return n
}

// stringScratch aggregates the values of one string column range before they
// are folded into a CategoricalState. Arrow's String.Value returns views into
// the batch's buffer; none of them may end up as a map key in the state (Go
// rewrites a string key on every assignment, so even incrementing an
// existing entry with a view would pin the batch), hence the fold goes
// through owned copies held in intern.
type stringScratch struct {
	index  map[string]int32 // view -> position in keys/counts; cleared after each fold
	keys   []string         // distinct views in order of first appearance
	counts []uint64
	intern map[string]string // owned copies of every value ever folded as a key
}

// addStrings records rows [lo, hi) of a into c; nulls count as Missing.
// Values are folded in order of first appearance, so the result equals
// calling Add row by row.
func (c *CategoricalState) addStrings(a *array.String, lo, hi int, sc *stringScratch) {
	if sc.index == nil {
		sc.index = make(map[string]int32)
		sc.intern = make(map[string]string)
	}
	hasNulls := a.NullN() > 0
	for i := lo; i < hi; i++ {
		if hasNulls && a.IsNull(i) {
			c.Missing++
			continue
		}
		v := a.Value(i)
		if j, ok := sc.index[v]; ok {
			sc.counts[j]++
			continue
		}
		sc.index[v] = int32(len(sc.keys))
		sc.keys = append(sc.keys, v)
		sc.counts = append(sc.counts, 1)
	}
	for j, v := range sc.keys {
		n := sc.counts[j]
		c.Count += n
		owned, interned := sc.intern[v]
		if !interned {
			owned = v // lookup only
		}
		m, ok := c.Counts[owned]
		if !ok && len(c.Counts) >= MaxCategories {
			c.Other += n
			continue
		}
		if !interned {
			owned = strings.Clone(v)
			sc.intern[owned] = owned
		}
		if c.Counts == nil {
			c.Counts = make(map[string]uint64)
		}
		c.Counts[owned] = m + n
	}
	clear(sc.index)
	clear(sc.keys)
	sc.keys = sc.keys[:0]
	sc.counts = sc.counts[:0]
}
