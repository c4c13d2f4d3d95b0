package reference

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/vigil-ml/vigil/schemas"
)

// ErrBadInput marks a reference file that cannot be read as one; the
// message says where (file:line) and why.
var ErrBadInput = errors.New("bad reference file")

func badInput(file string, line int, format string, args ...any) error {
	return fmt.Errorf("%w: %s:%d: %s", ErrBadInput, file, line, fmt.Sprintf(format, args...))
}

// ReadCSV reads a CSV file (RFC 4180, first row = column names) and emits
// its rows as records in the layout of schemas.NewSchema, BatchRows at a
// time; each record is released after emit returns. name is the file's
// name for error messages.
//
// Every column is a feature, except prediction_score, prediction_label and
// prediction_value (the prediction) and those in opts.Exclude. An empty field is
// a missing value. A column's kind is, unless declared in opts.Kinds: number
// when every non-empty value parses as a float (strconv.ParseFloat, so
// "NaN" and "Inf" count, as NaN and Inf), else bool when every non-empty
// value is true or false (any case), else string; prediction_label is
// always a string. Because kinds are inferred from the whole file, r is
// read twice.
func ReadCSV(r io.ReadSeeker, name string, opts ReadOptions, emit func(arrow.Record) error) error {
	opts = opts.withDefaults()
	header, kinds, err := inferCSV(r, name, opts)
	if err != nil {
		return err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read %s: rewind: %w", name, err)
	}
	cr := newCSVReader(r)
	if _, err := cr.Read(); err != nil { // the header again
		return csvError(name, err)
	}
	cs := newColumns(opts)
	defer cs.release()
	cols := make([]*fileColumn, len(header))
	for i, h := range header {
		if !opts.excluded(h) {
			cols[i] = cs.fileColumn(h)
		}
	}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		for i, s := range row {
			c := cols[i]
			if c == nil || s == "" {
				continue
			}
			v, err := parseCSV(s, kinds[i])
			if err == nil {
				err = cs.set(c, v)
			}
			if err != nil {
				return badInput(name, line, "column %q: %v", header[i], err)
			}
		}
		if err := cs.endRow(emit); err != nil {
			return err
		}
	}
	return cs.flush(emit)
}

func newCSVReader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	return cr // FieldsPerRecord 0: every row has as many fields as the header
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return badInput(name, pe.Line, "%v", pe.Err)
	}
	return fmt.Errorf("read %s: %w", name, err)
}

// inferCSV reads the header and the kind of every column.
func inferCSV(r io.Reader, name string, opts ReadOptions) (header []string, kinds []schemas.Kind, err error) {
	cr := newCSVReader(r)
	first, err := cr.Read()
	if err == io.EOF {
		return nil, nil, badInput(name, 1, "empty file: want a header row of column names")
	}
	if err != nil {
		return nil, nil, csvError(name, err)
	}
	header = append([]string(nil), first...)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // a UTF-8 byte order mark
	}
	seen := map[string]bool{}
	for i, h := range header {
		switch {
		case h == "":
			return nil, nil, badInput(name, 1, "column %d has no name", i+1)
		case len(h) > schemas.MaxNameLen:
			return nil, nil, badInput(name, 1, "column %d: name longer than %d bytes", i+1, schemas.MaxNameLen)
		case seen[h]:
			return nil, nil, badInput(name, 1, "column %q twice", h)
		}
		seen[h] = true
	}
	notNumber := make([]bool, len(header))
	notBool := make([]bool, len(header))
	present := make([]bool, len(header))
	for {
		row, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, csvError(name, err)
		}
		for i, s := range row {
			if s == "" {
				continue
			}
			present[i] = true
			if !notNumber[i] {
				_, err := strconv.ParseFloat(s, 64)
				notNumber[i] = err != nil
			}
			if !notBool[i] {
				_, ok := parseBool(s)
				notBool[i] = !ok
			}
		}
	}
	kinds = make([]schemas.Kind, len(header))
	for i, h := range header {
		switch k, declared := opts.Kinds[h]; {
		case declared && k != schemas.Null:
			kinds[i] = k
		case h == FilePredictionLabel:
			kinds[i] = schemas.String
		case h == FilePredictionScore || h == FilePredictionValue:
			kinds[i] = schemas.Number // a value that is not a number is an error
		case !present[i]:
			kinds[i] = schemas.Null
		case !notNumber[i]:
			kinds[i] = schemas.Number
		case !notBool[i]:
			kinds[i] = schemas.Bool
		default:
			kinds[i] = schemas.String
		}
	}
	return header, kinds, nil
}

// parseCSV converts a non-empty field to a value of kind k.
func parseCSV(s string, k schemas.Kind) (value, error) {
	switch k {
	case schemas.Number:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return value{}, fmt.Errorf("%q is not a number", clip(s))
		}
		return value{kind: schemas.Number, num: f}, nil
	case schemas.Bool:
		b, ok := parseBool(s)
		if !ok {
			return value{}, fmt.Errorf("%q is not true or false", clip(s))
		}
		return value{kind: schemas.Bool, b: b}, nil
	case schemas.String:
		return value{kind: schemas.String, str: s}, nil // the builder copies it
	}
	return value{}, nil // a column never present: no value
}

func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
