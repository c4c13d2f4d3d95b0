package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// errTooLarge is a body over MaxBodyBytes, compressed or not (413).
type errTooLarge struct{ limit int64 }

func (e errTooLarge) Error() string {
	return fmt.Sprintf("body larger than %d bytes (after decompression too): send smaller batches", e.limit)
}

// errUnsupported is an unknown Content-Encoding (415).
var errUnsupported = errors.New("unsupported Content-Encoding (want gzip, zstd or identity)")

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var gzipPool sync.Pool // *gzip.Reader

// zstdPool holds synchronous decoders (concurrency 1: no goroutines of
// their own) whose window is bounded so that a frame cannot ask for more
// memory than a body may hold.
var zstdPool sync.Pool // *zstd.Decoder

// readBody reads r's body into a pooled buffer (the caller puts it back
// with putBuf), decompressed as Content-Encoding says, at most limit bytes
// before and after decompression.
func readBody(r *http.Request, w http.ResponseWriter, limit int64) (*bytes.Buffer, error) {
	if r.ContentLength > limit {
		return nil, errTooLarge{limit}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	defer body.Close()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	err := decompress(buf, body, r.Header.Get("Content-Encoding"), limit)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = errTooLarge{limit}
	}
	if err != nil {
		putBuf(buf)
		return nil, err
	}
	return buf, nil
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 16<<20 { // keep the pool's buffers from pinning huge bodies
		bufPool.Put(b)
	}
}

// decompress copies src to dst, decoded by encoding, failing with
// errTooLarge past limit decoded bytes.
func decompress(dst *bytes.Buffer, src io.Reader, encoding string, limit int64) error {
	var rd io.Reader
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		rd = src
	case "gzip", "x-gzip":
		zr, _ := gzipPool.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(src)
		} else {
			err = zr.Reset(src)
		}
		if err != nil {
			return fmt.Errorf("gzip body: %w", err)
		}
		defer gzipPool.Put(zr)
		rd = zr
	case "zstd":
		zd, _ := zstdPool.Get().(*zstd.Decoder)
		var err error
		if zd == nil {
			zd, err = zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxMemory(uint64(limit)+1), zstd.WithDecoderMaxWindow(uint64(min(limit, 1<<27))+1))
			if err != nil {
				panic(fmt.Sprintf("BUG: zstd decoder options: %v", err))
			}
		} else {
			err = zd.Reset(src)
		}
		if err != nil {
			return fmt.Errorf("zstd body: %w", err)
		}
		defer func() {
			_ = zd.Reset(nil)
			zstdPool.Put(zd)
		}()
		rd = zd
	default:
		return errUnsupported
	}
	n, err := dst.ReadFrom(io.LimitReader(rd, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return errTooLarge{limit}
		}
		return fmt.Errorf("read body: %w", err)
	}
	if n > limit {
		return errTooLarge{limit}
	}
	return nil
}

// isNDJSON reports whether a Content-Type names newline-delimited JSON.
func isNDJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/json-seq":
		return true
	}
	return false
}

// errSyntax is a body whose items cannot be told apart (400, index -1).
type errSyntax struct{ reason string }

func (e errSyntax) Error() string { return e.reason }

// errTooManyItems is a body of more than MaxItems items (413).
type errTooManyItems struct{ limit int }

func (e errTooManyItems) Error() string {
	return fmt.Sprintf("more than %d items in one request: send smaller batches", e.limit)
}

// splitItems splits a body into its items, appended to dst: each line of
// NDJSON (blank lines skipped, a trailing \r dropped), each element of a
// top-level JSON array, or else the body as one item. Items are subslices
// of body; what is inside them is for the item decoders to judge. It stops
// with errTooManyItems past maxItems, and with errSyntax when the array's
// elements cannot be delimited.
func splitItems(dst [][]byte, body []byte, ndjson bool, maxItems int) ([][]byte, error) {
	if ndjson {
		for len(body) > 0 {
			line := body
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			line = trimSpace(line)
			if len(line) == 0 {
				continue
			}
			if len(dst) == maxItems {
				return dst, errTooManyItems{maxItems}
			}
			dst = append(dst, line)
		}
		return dst, nil
	}
	body = trimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		if len(body) > 0 {
			dst = append(dst, body)
		}
		return dst, nil
	}
	return splitArray(dst, body, maxItems)
}

// splitArray splits a JSON array (body[0] == '[', no surrounding space)
// into its elements. It tracks strings and nesting only: an element's
// well-formedness is checked by its decoder, but a string or bracket left
// open, a missing comma or anything after the closing ']' makes the whole
// body unparseable.
func splitArray(dst [][]byte, body []byte, maxItems int) ([][]byte, error) {
	const maxDepth = 128
	depth := 0  // inside the top array: 0
	start := -1 // start of the current element, -1: none yet
	expect := 0 // 0: an element or ']' (after '['), 1: ',' or ']' (after an element), 2: an element (after ',')
	inStr := false
	for i := 1; i < len(body); i++ {
		c := body[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		if depth == 0 {
			switch c {
			case ' ', '\t', '\n', '\r':
				if start >= 0 {
					dst, expect, start = append(dst, body[start:i]), 1, -1
				}
				continue
			case ',':
				if start >= 0 {
					dst, expect, start = append(dst, body[start:i]), 1, -1
				}
				if expect != 1 {
					return dst, errSyntax{fmt.Sprintf("body: JSON array: unexpected ',' at byte %d", i)}
				}
				expect = 2
				continue
			case ']':
				if start >= 0 {
					dst, expect, start = append(dst, body[start:i]), 1, -1
				}
				if expect == 2 {
					return dst, errSyntax{fmt.Sprintf("body: JSON array: ']' after ',' at byte %d", i)}
				}
				if i != len(body)-1 {
					return dst, errSyntax{fmt.Sprintf("body: data after the closing ']' at byte %d", i+1)}
				}
				if len(dst) > maxItems {
					return dst[:maxItems], errTooManyItems{maxItems}
				}
				return dst, nil
			}
			if start < 0 {
				if expect == 1 {
					return dst, errSyntax{fmt.Sprintf("body: JSON array: missing ',' before byte %d", i)}
				}
				if len(dst) == maxItems {
					return dst, errTooManyItems{maxItems}
				}
				start = i
			}
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			if depth++; depth > maxDepth {
				return dst, errSyntax{fmt.Sprintf("body: nested deeper than %d", maxDepth)}
			}
		case '}', ']':
			if depth == 0 {
				return dst, errSyntax{fmt.Sprintf("body: JSON array: unexpected %q at byte %d", c, i)}
			}
			depth--
		}
	}
	return dst, errSyntax{"body: JSON array not closed (truncated body?)"}
}

// trimSpace trims JSON's whitespace (RFC 8259: space, tab, CR, LF) from b.
func trimSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
