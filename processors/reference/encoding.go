package reference

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/internal/binenc"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// The binary form of a Profile (the profile column of vigil_references).
// Integers are uvarints unless said otherwise, floats are 8 bytes
// (IEEE 754 bits, little endian), strings are a uvarint length and bytes.
//
//	4 bytes  "VREF"
//	byte     version (1; 2 when a feature has ChunkScores; 3 when the
//	         profile has Segments or a feature a RankError other than 0)
//	string   model, model version
//	uvarint  id
//	varint   created at, Unix microseconds
//	string   source
//	uvarint  rows
//	uvarint  number of features, then per feature, sorted by name:
//	  string   name
//	  byte     kind
//	  uvarint  count, missing, type mismatches
//	  if kind is number:
//	    uvarint  nan, inf
//	    float    mean, std, min, max
//	    uvarint  number of edges n, then n floats, then n+1 (0 when n = 0) uvarint bin counts
//	    byte     1 if exact
//	    uvarint  number of quantiles m, then m floats
//	  if kind is string or bool:
//	    uvarint  other
//	    uvarint  number of values, then per value, sorted: string, uvarint count
//	    float    rank error (version 3 only)
//	  versions 2 and 3:
//	    uvarint  number of chunk-score methods, then per method, sorted:
//	             string name, uvarint chunks, float mean, float std
//	version 3 only:
//	uvarint  number of segments, then per segment, sorted:
//	  string   segment ("key=value"), uvarint rows, then its features as above
//
// Profiles of versions 1 and 2 built from production windows over more than
// stats.ExactCap values (Exact false, Source "production:...") decode with
// RankError NaN: unknown, so their drift bounds are unknown too.
// A profile without ChunkScores is written as version 1, byte for byte what
// builds before version 2 wrote; version 2 with no ChunkScores at all is
// rejected, so that every profile has one encoding.
// Decoding checks the invariants a profile holds (sorted unique names,
// increasing edges, bin counts adding up to count, sorted finite quantiles,
// at most stats.MaxCategories values), so a decoded profile is safe to use.
const (
	encodingMagic = "VREF"
	// encodingVersion is the newest version; encodingVersionNoChunks the
	// one profiles without ChunkScores keep.
	encodingVersion         = 3
	encodingVersionChunks   = 2
	encodingVersionNoChunks = 1
)

// ErrCorrupt is returned by UnmarshalBinary for data that is not an encoded
// profile of a version this package reads.
var ErrCorrupt = errors.New("corrupt reference profile")

// MarshalBinary encodes p (see AppendBinary).
func (p *Profile) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// AppendBinary appends the binary form of p to dst. It fails for a profile
// that breaks the invariants UnmarshalBinary checks.
func (p *Profile) AppendBinary(dst []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return dst, fmt.Errorf("encode reference profile %s/%s: %w", p.Model, p.ModelVersion, err)
	}
	version := byte(encodingVersionNoChunks)
	switch {
	case p.needsVersion3():
		version = encodingVersion
	case p.hasChunkScores():
		version = encodingVersionChunks
	}
	dst = append(dst, encodingMagic...)
	dst = append(dst, version)
	dst = appendString(dst, p.Model)
	dst = appendString(dst, p.ModelVersion)
	dst = binary.AppendUvarint(dst, p.ID)
	dst = binary.AppendVarint(dst, p.CreatedAt.UnixMicro())
	dst = appendString(dst, p.Source)
	dst = binary.AppendUvarint(dst, p.Rows)
	dst = appendFeatures(dst, p.Features, version)
	if version >= 3 {
		dst = binary.AppendUvarint(dst, uint64(len(p.Segments)))
		for i := range p.Segments {
			sp := &p.Segments[i]
			dst = appendString(dst, sp.Segment)
			dst = binary.AppendUvarint(dst, sp.Rows)
			dst = appendFeatures(dst, sp.Features, version)
		}
	}
	return dst, nil
}

// appendFeatures appends the features in the layout of version.
func appendFeatures(dst []byte, features []FeatureProfile, version byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(features)))
	for i := range features {
		f := &features[i]
		dst = appendString(dst, f.Name)
		dst = append(dst, byte(f.Kind))
		dst = appendUvarints(dst, f.Count, f.Missing, f.TypeMismatch)
		switch f.Kind {
		case schemas.Number:
			dst = appendUvarints(dst, f.NaN, f.Inf)
			dst = appendFloats(dst, f.Mean, f.Std, f.Min, f.Max)
			dst = binary.AppendUvarint(dst, uint64(len(f.Edges)))
			dst = appendFloats(dst, f.Edges...)
			dst = appendUvarints(dst, f.Hist...)
			if f.Exact {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
			dst = binary.AppendUvarint(dst, uint64(len(f.Quantiles)))
			dst = appendFloats(dst, f.Quantiles...)
			if version >= 3 {
				dst = appendFloats(dst, f.RankError)
			}
		case schemas.String, schemas.Bool:
			dst = binary.AppendUvarint(dst, f.Other)
			dst = binary.AppendUvarint(dst, uint64(len(f.Counts)))
			keys := make([]string, 0, len(f.Counts))
			for k := range f.Counts {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				dst = appendString(dst, k)
				dst = binary.AppendUvarint(dst, f.Counts[k])
			}
		}
		if version >= 2 {
			dst = binary.AppendUvarint(dst, uint64(len(f.ChunkScores)))
			methods := make([]string, 0, len(f.ChunkScores))
			for m := range f.ChunkScores {
				methods = append(methods, m)
			}
			slices.Sort(methods)
			for _, m := range methods {
				cs := f.ChunkScores[m]
				dst = appendString(dst, m)
				dst = binary.AppendUvarint(dst, uint64(cs.Chunks))
				dst = appendFloats(dst, cs.Mean, cs.Std)
			}
		}
	}
	return dst
}

func (p *Profile) hasChunkScores() bool {
	for i := range p.Features {
		if len(p.Features[i].ChunkScores) > 0 {
			return true
		}
	}
	return false
}

// needsVersion3: segments, a rank error other than 0, or a production
// profile with a quantile summary that does not hold every value (whose
// rank error, even 0, versions 1 and 2 cannot tell from unknown).
func (p *Profile) needsVersion3() bool {
	if len(p.Segments) > 0 {
		return true
	}
	production := strings.HasPrefix(p.Source, "production:")
	for i := range p.Features {
		f := &p.Features[i]
		if f.RankError != 0 || (production && f.Kind == schemas.Number && len(f.Quantiles) > 0 && !f.Exact) {
			return true
		}
	}
	return false
}

// UnmarshalBinary decodes data (from MarshalBinary) into p. Every error
// wraps ErrCorrupt.
func (p *Profile) UnmarshalBinary(data []byte) (err error) {
	d := decoder{binenc.NewDecoder(data)}
	defer func() {
		if r := recover(); r != nil {
			de, ok := r.(decodeError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%w: %s", ErrCorrupt, string(de))
		}
	}()
	if len(data) < len(encodingMagic)+1 || string(data[:len(encodingMagic)]) != encodingMagic {
		d.fail("not a reference profile (no %q header)", encodingMagic)
	}
	for range len(encodingMagic) {
		d.byte()
	}
	version := d.byte()
	if version < encodingVersionNoChunks || version > encodingVersion {
		d.fail("version %d, this build reads versions %d to %d (upgrade vigil)", version, encodingVersionNoChunks, encodingVersion)
	}
	var q Profile
	q.Model, q.ModelVersion = d.string(), d.string()
	q.ID = d.uvarint()
	q.CreatedAt = time.UnixMicro(d.varint()).UTC()
	q.Source = d.string()
	q.Rows = d.uvarint()
	q.Features = d.features(version)
	if version >= 3 {
		ns := d.count(4)
		if ns > 0 {
			q.Segments = make([]SegmentProfile, ns)
		}
		for i := range q.Segments {
			sp := &q.Segments[i]
			sp.Segment = d.string()
			sp.Rows = d.uvarint()
			sp.Features = d.features(version)
		}
	}
	if version < 3 && strings.HasPrefix(q.Source, "production:") {
		for i := range q.Features {
			if f := &q.Features[i]; f.Kind == schemas.Number && len(f.Quantiles) > 0 && !f.Exact {
				f.RankError = math.NaN()
			}
		}
	}
	if version == encodingVersionChunks && !q.hasChunkScores() {
		d.fail("version %d without chunk scores", version)
	}
	if version == encodingVersion && !q.needsVersion3() {
		d.fail("version %d without segments or rank errors", version)
	}
	if d.Rest() != 0 {
		d.fail("%d bytes of trailing data", d.Rest())
	}
	if err := q.check(); err != nil {
		d.fail("%v", err)
	}
	*p = q
	return nil
}

// check reports the first broken invariant of p.
func (p *Profile) check() error {
	if err := checkFeatures(p.Features); err != nil {
		return err
	}
	for i := range p.Segments {
		sp := &p.Segments[i]
		if sp.Segment == "" || (i > 0 && strings.Compare(p.Segments[i-1].Segment, sp.Segment) >= 0) {
			return fmt.Errorf("segment %d %q: empty, not sorted or repeated", i, sp.Segment)
		}
		if err := checkFeatures(sp.Features); err != nil {
			return fmt.Errorf("segment %s: %w", sp.Segment, err)
		}
	}
	return nil
}

func checkFeatures(features []FeatureProfile) error {
	p := struct{ Features []FeatureProfile }{features}
	for i := range p.Features {
		f := &p.Features[i]
		if f.Name == "" {
			return fmt.Errorf("feature %d has no name", i)
		}
		if i > 0 && strings.Compare(p.Features[i-1].Name, f.Name) >= 0 {
			return fmt.Errorf("features %q and %q not sorted by name or repeated", p.Features[i-1].Name, f.Name)
		}
		if err := f.check(); err != nil {
			return fmt.Errorf("feature %q: %w", f.Name, err)
		}
	}
	return nil
}

func (f *FeatureProfile) check() error {
	switch f.Kind {
	case schemas.Null:
		if f.Count != 0 || len(f.Counts) > 0 {
			return fmt.Errorf("kind null with %d values", f.Count)
		}
	case schemas.Number:
		if err := f.checkNumeric(); err != nil {
			return err
		}
	case schemas.String, schemas.Bool:
		if len(f.Counts) > stats.MaxCategories {
			return fmt.Errorf("%d distinct values, more than %d", len(f.Counts), stats.MaxCategories)
		}
		sum := f.Other
		for _, n := range f.Counts {
			sum += n
		}
		if sum != f.Count {
			return fmt.Errorf("value counts add up to %d, count is %d", sum, f.Count)
		}
	default:
		return fmt.Errorf("unknown kind %d", f.Kind)
	}
	if f.Kind != schemas.Number && (len(f.Edges) > 0 || len(f.Quantiles) > 0) {
		return fmt.Errorf("kind %s with bins or quantiles", f.Kind)
	}
	for m, cs := range f.ChunkScores {
		if m == "" {
			return errors.New("chunk scores without a method name")
		}
		if cs.Chunks < 2 || cs.Mean-cs.Mean != 0 || cs.Std-cs.Std != 0 || cs.Std < 0 {
			return fmt.Errorf("chunk scores of %q: %d chunks, mean %v, std %v (want at least 2 chunks, finite mean, finite std >= 0)", m, cs.Chunks, cs.Mean, cs.Std)
		}
	}
	return nil
}

func (f *FeatureProfile) checkNumeric() error {
	if len(f.Counts) > 0 {
		return errors.New("numeric feature with value counts")
	}
	if len(f.Edges) > 0 {
		if len(f.Hist) != len(f.Edges)+1 {
			return fmt.Errorf("%d edges and %d bin counts, want %d", len(f.Edges), len(f.Hist), len(f.Edges)+1)
		}
		if len(f.Edges) < 2 {
			return errors.New("fewer than 2 edges")
		}
		for j, e := range f.Edges {
			if e-e != 0 {
				return fmt.Errorf("edge %d is %v", j, e)
			}
			// Strictly increasing, except the [v, v] of a constant feature.
			if j > 0 && e <= f.Edges[j-1] && !(len(f.Edges) == 2 && e == f.Edges[0]) {
				return fmt.Errorf("edges not increasing at %d", j)
			}
		}
		var sum uint64
		for _, n := range f.Hist {
			sum += n
		}
		if sum != f.Count {
			return fmt.Errorf("bin counts add up to %d, count is %d", sum, f.Count)
		}
	} else if len(f.Hist) > 0 {
		return errors.New("bin counts without edges")
	}
	for j, q := range f.Quantiles {
		if q-q != 0 || (j > 0 && q < f.Quantiles[j-1]) {
			return fmt.Errorf("quantiles not sorted and finite at %d", j)
		}
	}
	if f.Exact && uint64(len(f.Quantiles)) != f.Count {
		return fmt.Errorf("exact quantile summary of %d values, count is %d", len(f.Quantiles), f.Count)
	}
	if uint64(len(f.Quantiles)) > f.Count {
		return fmt.Errorf("%d quantiles of %d values", len(f.Quantiles), f.Count)
	}
	if !(f.RankError >= 0 && f.RankError <= 1) && !math.IsNaN(f.RankError) {
		return fmt.Errorf("rank error %v, want 0..1 or NaN", f.RankError)
	}
	return nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendUvarints(dst []byte, vs ...uint64) []byte {
	for _, v := range vs {
		dst = binary.AppendUvarint(dst, v)
	}
	return dst
}

func appendFloats(dst []byte, vs ...float64) []byte {
	for _, v := range vs {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	}
	return dst
}

// decoder reads the binary form with binenc; the first error panics with a
// decodeError that UnmarshalBinary recovers, so the decoding code above reads
// straight through without checking after every field.
type decoder struct{ binenc.Decoder }

type decodeError string

// must panics with the decoder's error, if any.
func (d *decoder) must() {
	if err := d.Err(); err != nil {
		panic(decodeError(err.Error()))
	}
}

func (d *decoder) fail(format string, args ...any) { d.Fail(format, args...); d.must() }
func (d *decoder) byte() byte                      { v := d.Byte(); d.must(); return v }
func (d *decoder) uvarint() uint64                 { v := d.Uvarint(); d.must(); return v }
func (d *decoder) varint() int64                   { v := d.Varint(); d.must(); return v }
func (d *decoder) float() float64                  { v := d.Float64(); d.must(); return v }
func (d *decoder) string() string                  { v := d.String(); d.must(); return v }

// count reads a number of items of at least minBytes each and checks that
// the rest of the data can hold them, so that corrupt input cannot make the
// decoder allocate more than a small multiple of its size.
func (d *decoder) count(minBytes int) int { v := d.Count(minBytes); d.must(); return v }

// features reads the features of a profile or segment in the layout of
// version.
func (d *decoder) features(version byte) []FeatureProfile {
	nf := d.count(3) // name length, kind, counts: at least 3 bytes each
	features := make([]FeatureProfile, nf)
	for i := range features {
		f := &features[i]
		f.Name = d.string()
		f.Kind = schemas.Kind(d.byte())
		f.Count, f.Missing, f.TypeMismatch = d.uvarint(), d.uvarint(), d.uvarint()
		f.Mean, f.Std, f.Min, f.Max = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		switch f.Kind {
		case schemas.Null:
		case schemas.Number:
			f.NaN, f.Inf = d.uvarint(), d.uvarint()
			f.Mean, f.Std, f.Min, f.Max = d.float(), d.float(), d.float(), d.float()
			if n := d.count(8); n > 0 {
				f.Edges = make([]float64, n)
				for j := range f.Edges {
					f.Edges[j] = d.float()
				}
				f.Hist = make([]uint64, n+1)
				for j := range f.Hist {
					f.Hist[j] = d.uvarint()
				}
			}
			switch d.byte() {
			case 0:
			case 1:
				f.Exact = true
			default:
				d.fail("feature %q: bad exact flag", f.Name)
			}
			if m := d.count(8); m > 0 {
				f.Quantiles = make([]float64, m)
				for j := range f.Quantiles {
					f.Quantiles[j] = d.float()
				}
			}
			if version >= 3 {
				f.RankError = d.float()
			}
		case schemas.String, schemas.Bool:
			f.Other = d.uvarint()
			nc := d.count(2)
			f.Counts = make(map[string]uint64, nc)
			for range nc {
				k := d.string()
				if _, dup := f.Counts[k]; dup {
					d.fail("feature %q: value %q twice", f.Name, k)
				}
				f.Counts[k] = d.uvarint()
			}
		default:
			d.fail("feature %q: unknown kind %d", f.Name, f.Kind)
		}
		if version >= 2 {
			if n := d.count(18); n > 0 { // name length, chunks, two floats
				f.ChunkScores = make(map[string]ChunkStats, n)
				for range n {
					m := d.string()
					if _, dup := f.ChunkScores[m]; dup {
						d.fail("feature %q: chunk scores of %q twice", f.Name, m)
					}
					chunks := d.uvarint()
					if chunks > math.MaxInt32 {
						d.fail("feature %q: %d chunks", f.Name, chunks)
					}
					f.ChunkScores[m] = ChunkStats{Chunks: int(chunks), Mean: d.float(), Std: d.float()}
				}
			}
		}
	}
	return features
}
