package pipeline

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-ml/vigil/processors/stats"
)

// MaxDedupEventIDs bounds the event ids a partition remembers for
// Config.DedupEventIDs, over all its open windows. Beyond it the events of a
// window that are not remembered are counted, not deduplicated
// (Counters.DedupOverflow).
const MaxDedupEventIDs = 200_000

// eventIDSets are, with Config.DedupEventIDs, the hashes (64-bit FNV-1a) of
// the ids of the events counted in each open window of a partition (keys
// with Segment ""), at most MaxDedupEventIDs in all. A window's set goes when
// the window closes: later events of it are late, not counted.
type eventIDSets struct {
	byWindow map[stats.Key]map[uint64]struct{}
	held     int
}

func newEventIDSets() *eventIDSets {
	return &eventIDSets{byWindow: make(map[stats.Key]map[uint64]struct{})}
}

// eventIDHash is FNV-1a 64 of id; two ids of one window collide with
// probability about n²/2⁶⁵ (3e-10 for 100000 events), which would skip one
// event.
func eventIDHash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// seen records the id of an event of window k (which may alias an Arrow
// buffer) and reports whether the window had it already. full is true when
// the id was new and could not be remembered.
func (s *eventIDSets) seen(k stats.Key, id string) (dup, full bool) {
	h := eventIDHash(id)
	set := s.byWindow[k]
	if _, ok := set[h]; ok {
		return true, false
	}
	if s.held >= MaxDedupEventIDs {
		return false, true
	}
	if set == nil {
		set = make(map[uint64]struct{})
		s.byWindow[stats.Key{Model: strings.Clone(k.Model), ModelVersion: strings.Clone(k.ModelVersion), WindowStart: k.WindowStart}] = set
	}
	set[h] = struct{}{}
	s.held++
	return false, false
}

// drop forgets the ids of window k.
func (s *eventIDSets) drop(k stats.Key) {
	if set, ok := s.byWindow[k]; ok {
		s.held -= len(set)
		delete(s.byWindow, k)
	}
}

// dedupStateVersion is the first byte of the partition's stored dedup state
// when it holds event ids; producerSequencesVersion when it does not (then it
// is the producer sequences' own encoding, as before DedupEventIDs).
const dedupStateVersion = 2

// appendDedupState appends the partition's dedup state, stored in the
// checkpoint row: without event ids the producer sequences' encoding;
// otherwise dedupStateVersion, the length of that encoding (uvarint) and
// the encoding, the number of windows (uvarint), then per window, ordered
// by key, model and model version (each uvarint length, bytes), window start
// (varint, ms), the number of ids (uvarint) and the ids (8 bytes each,
// little endian). skip leaves out the windows it reports true for.
func appendDedupState(dst []byte, prod *producerSequences, ids *eventIDSets, skip func(stats.Key) bool) []byte {
	var keys []stats.Key
	if ids != nil {
		for k := range ids.byWindow {
			if !skip(k) {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return prod.appendBinary(dst)
	}
	slices.SortFunc(keys, func(a, b stats.Key) int {
		if c := strings.Compare(a.Model, b.Model); c != 0 {
			return c
		}
		if c := strings.Compare(a.ModelVersion, b.ModelVersion); c != 0 {
			return c
		}
		return cmp.Compare(a.WindowStart, b.WindowStart)
	})
	dst = append(dst, dedupStateVersion)
	n := len(dst)
	dst = prod.appendBinary(dst)
	dst = slices.Insert(dst, n, binary.AppendUvarint(nil, uint64(len(dst)-n))...)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = binary.AppendUvarint(dst, uint64(len(k.Model)))
		dst = append(dst, k.Model...)
		dst = binary.AppendUvarint(dst, uint64(len(k.ModelVersion)))
		dst = append(dst, k.ModelVersion...)
		dst = binary.AppendVarint(dst, k.WindowStart)
		set := ids.byWindow[k]
		dst = binary.AppendUvarint(dst, uint64(len(set)))
		hs := make([]uint64, 0, len(set))
		for h := range set {
			hs = append(hs, h)
		}
		slices.Sort(hs)
		for _, h := range hs {
			dst = binary.LittleEndian.AppendUint64(dst, h)
		}
	}
	return dst
}

// decodeDedupState decodes what appendDedupState wrote (stored bytes: they
// may be anything). ids is empty when b holds none.
func decodeDedupState(b []byte, maxProducers int) (*producerSequences, *eventIDSets, error) {
	ids := newEventIDSets()
	if len(b) == 0 || b[0] != dedupStateVersion {
		prod, err := decodeProducerSequences(b, maxProducers)
		return prod, ids, err
	}
	b = b[1:]
	uvarint := func(what string) (uint64, error) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, fmt.Errorf("%w: bad %s", errBadProducerSequences, what)
		}
		b = b[k:]
		return v, nil
	}
	bytesOf := func(what string) ([]byte, error) {
		n, err := uvarint(what + " length")
		if err != nil {
			return nil, err
		}
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("%w: %s of %d bytes in %d", errBadProducerSequences, what, n, len(b))
		}
		v := b[:n]
		b = b[n:]
		return v, nil
	}
	enc, err := bytesOf("producer sequences")
	if err != nil {
		return nil, nil, err
	}
	prod, err := decodeProducerSequences(enc, maxProducers)
	if err != nil {
		return nil, nil, err
	}
	windows, err := uvarint("window count")
	if err != nil {
		return nil, nil, err
	}
	if windows == 0 || windows > uint64(len(b)/4) {
		return nil, nil, fmt.Errorf("%w: %d windows in %d bytes", errBadProducerSequences, windows, len(b))
	}
	for range windows {
		model, err := bytesOf("model")
		if err != nil {
			return nil, nil, err
		}
		version, err := bytesOf("model version")
		if err != nil {
			return nil, nil, err
		}
		start, k := binary.Varint(b)
		if k <= 0 {
			return nil, nil, fmt.Errorf("%w: bad window start", errBadProducerSequences)
		}
		b = b[k:]
		n, err := uvarint("id count")
		if err != nil {
			return nil, nil, err
		}
		if n > uint64(len(b)/8) || ids.held+int(n) > MaxDedupEventIDs {
			return nil, nil, fmt.Errorf("%w: %d event ids in %d bytes (%d held)", errBadProducerSequences, n, len(b), ids.held)
		}
		key := stats.Key{Model: string(model), ModelVersion: string(version), WindowStart: start}
		if ids.byWindow[key] != nil {
			return nil, nil, fmt.Errorf("%w: window %s twice", errBadProducerSequences, key.Model)
		}
		set := make(map[uint64]struct{}, n)
		for range n {
			set[binary.LittleEndian.Uint64(b)] = struct{}{}
			b = b[8:]
		}
		ids.byWindow[key] = set
		ids.held += len(set)
	}
	if len(b) != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes after the last window", errBadProducerSequences, len(b))
	}
	return prod, ids, nil
}
