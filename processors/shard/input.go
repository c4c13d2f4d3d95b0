package shard

import "math"

// Input is an order-independent fingerprint of what a computation read (a
// window's partition states, or its predictions and labels): the sum of
// one hash per item, so that the store may return the items in any order.
// The zero value is the fingerprint of nothing.
type Input struct{ sum, n uint64 }

// Add adds one item.
func (in *Input) Add(it Item) {
	in.sum += mix(it.h)
	in.n++
}

// Sum is the fingerprint.
func (in Input) Sum() uint64 { return in.sum ^ mix(in.n+0x9e3779b97f4a7c15) }

// Item is the hash of one item (FNV-1a, 64 bits), built field by field:
// NewItem().String(id).Uint64(offset).
type Item struct{ h uint64 }

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// NewItem is an empty item.
func NewItem() Item { return Item{fnvOffset} }

// String adds s (and its length, so that ("ab","c") and ("a","bc") differ).
func (it Item) String(s string) Item {
	for i := 0; i < len(s); i++ {
		it.h = (it.h ^ uint64(s[i])) * fnvPrime
	}
	return it.Uint64(uint64(len(s)))
}

// Uint64 adds v.
func (it Item) Uint64(v uint64) Item {
	for i := 0; i < 8; i++ {
		it.h = (it.h ^ (v & 0xff)) * fnvPrime
		v >>= 8
	}
	return it
}

// Int64 adds v.
func (it Item) Int64(v int64) Item { return it.Uint64(uint64(v)) }

// Float64 adds v (its bits).
func (it Item) Float64(v float64) Item { return it.Uint64(math.Float64bits(v)) }

// Bool adds v.
func (it Item) Bool(v bool) Item {
	if v {
		return it.Uint64(1)
	}
	return it.Uint64(0)
}

// mix is splitmix64's finalizer: spreads an item's hash over all bits
// before the sum.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Sum is the item's hash.
func (it Item) Sum() uint64 { return it.h }
