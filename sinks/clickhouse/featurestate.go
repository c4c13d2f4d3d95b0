package clickhouse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/vigil-ml/vigil/internal/binenc"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// The feature_states column of vigil_model_windows holds every feature state
// of the window in this encoding, so that one row restores one window whole
// (see DESIGN.md, delivery guarantee). vigil_feature_windows holds the same
// numbers as columns for queries.
//
//	byte    version (3; versions 1 and 2 are still read)
//	uvarint number of features, then per feature, sorted by name:
//	  string  name (uvarint length + bytes)
//	  byte    kind
//	  uvarint type mismatches
//	  uvarint num count, missing, nan, inf
//	  8 bytes num sum, m2, min, max (IEEE 754 bits, little endian)
//	  uvarint cat count, missing, other
//	  byte    1 if the category map is non-nil
//	  uvarint number of categories, then per category, sorted: string, uvarint count
//	  uvarint length of the value sketch, then (when > 0) its encoding
//	          (stats.ValueSketch.AppendBinary)   -- since version 2
//	uvarint length of the coarse histogram, then (when > 0) its encoding
//	          (stats.CoarseHistogram.AppendBinary; windows kept without
//	          value sketches)                     -- since version 3
//
// Version 1 has no value sketch: its states decode with an empty Values, so
// FeatureState.ValuesComplete is false for them (Values.Count() differs from
// Num.Count) and for every merge that includes them. An empty sketch is
// written as length 0. Versions 1 and 2 have no coarse histogram (Bins
// empty).
const (
	featureStatesVersion   = 3
	featureStatesVersionV1 = 1
)

var errCorruptFeatures = errors.New("corrupt feature_states")

func appendFeatureStates(dst []byte, fs map[string]*stats.FeatureState) []byte {
	dst = append(dst, featureStatesVersion)
	dst = binary.AppendUvarint(dst, uint64(len(fs)))
	for _, name := range sortedKeys(fs) {
		f := fs[name]
		dst = appendString(dst, name)
		dst = append(dst, byte(f.Kind))
		dst = binary.AppendUvarint(dst, f.TypeMismatch)
		n := &f.Num
		for _, v := range []uint64{n.Count, n.Missing, n.NaN, n.Inf} {
			dst = binary.AppendUvarint(dst, v)
		}
		for _, v := range []float64{n.Sum, n.M2, n.Min, n.Max} {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
		c := &f.Cat
		for _, v := range []uint64{c.Count, c.Missing, c.Other} {
			dst = binary.AppendUvarint(dst, v)
		}
		if c.Counts == nil {
			dst = append(dst, 0)
		} else {
			dst = append(dst, 1)
		}
		dst = binary.AppendUvarint(dst, uint64(len(c.Counts)))
		for _, k := range sortedKeys(c.Counts) {
			dst = appendString(dst, k)
			dst = binary.AppendUvarint(dst, c.Counts[k])
		}
		dst = appendValueSketch(dst, &f.Values)
		dst = appendCoarseHistogram(dst, &f.Bins)
	}
	return dst
}

// appendCoarseHistogram appends h with a uvarint length prefix (0 when
// empty).
func appendCoarseHistogram(dst []byte, h *stats.CoarseHistogram) []byte {
	if h.Count() == 0 {
		return append(dst, 0)
	}
	enc, _ := h.AppendBinary(nil) // never fails
	dst = binary.AppendUvarint(dst, uint64(len(enc)))
	return append(dst, enc...)
}

// appendValueSketch appends s with a uvarint length prefix (0 when empty)
// and no copy: the length is patched in after the encoding.
func appendValueSketch(dst []byte, s *stats.ValueSketch) []byte {
	if s.Count() == 0 {
		return append(dst, 0)
	}
	start := len(dst)
	dst = append(dst, make([]byte, binary.MaxVarintLen64)...)
	dst, _ = s.AppendBinary(dst) // never fails
	n := len(dst) - start - binary.MaxVarintLen64
	var lenBuf [binary.MaxVarintLen64]byte
	w := binary.PutUvarint(lenBuf[:], uint64(n))
	copy(dst[start:], lenBuf[:w])
	return append(dst[:start+w], dst[start+binary.MaxVarintLen64:]...)
}

func decodeFeatureStates(b []byte) (map[string]*stats.FeatureState, error) {
	d := binenc.NewDecoder(b)
	version := d.Byte()
	if version < featureStatesVersionV1 || version > featureStatesVersion {
		if err := d.Err(); err != nil {
			return nil, fmt.Errorf("%w: %v", errCorruptFeatures, err)
		}
		return nil, fmt.Errorf("%w: version %d, want %d to %d (written by a newer Vigil?)", errCorruptFeatures, version, featureStatesVersionV1, featureStatesVersion)
	}
	// Every feature and category takes at least one byte.
	n := d.Count(1)
	fs := make(map[string]*stats.FeatureState, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		name := d.String()
		f := &stats.FeatureState{Kind: schemas.Kind(d.Byte()), TypeMismatch: d.Uvarint()}
		f.Num.Count, f.Num.Missing, f.Num.NaN, f.Num.Inf = d.Uvarint(), d.Uvarint(), d.Uvarint(), d.Uvarint()
		f.Num.Sum, f.Num.M2, f.Num.Min, f.Num.Max = d.Float64(), d.Float64(), d.Float64(), d.Float64()
		f.Cat.Count, f.Cat.Missing, f.Cat.Other = d.Uvarint(), d.Uvarint(), d.Uvarint()
		hasMap := d.Byte() == 1
		m := d.Count(1)
		if hasMap || m > 0 {
			f.Cat.Counts = make(map[string]uint64, m)
		}
		for j := 0; j < m && d.Err() == nil; j++ {
			k := d.String()
			f.Cat.Counts[k] = d.Uvarint()
		}
		if version >= 2 {
			if sk := d.Bytes(); len(sk) > 0 && d.Err() == nil {
				if err := f.Values.UnmarshalBinary(sk); err != nil {
					return nil, fmt.Errorf("%w: feature %q: %v", errCorruptFeatures, name, err)
				}
			}
		}
		if version >= 3 {
			if h := d.Bytes(); len(h) > 0 && d.Err() == nil {
				if err := f.Bins.UnmarshalBinary(h); err != nil {
					return nil, fmt.Errorf("%w: feature %q: %v", errCorruptFeatures, name, err)
				}
			}
		}
		fs[name] = f
	}
	if d.Err() == nil && d.Rest() != 0 {
		d.Fail("%d trailing bytes", d.Rest())
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptFeatures, err)
	}
	return fs, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
