package reference

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
)

// Format is the format of a reference file.
type Format string

// Formats of reference files.
const (
	FormatCSV     Format = "csv"
	FormatJSONL   Format = "jsonl"
	FormatParquet Format = "parquet"
)

// FormatOf returns the format of a file by its extension: .csv, .jsonl or
// .ndjson, .parquet (any case).
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return FormatCSV, nil
	case ".jsonl", ".ndjson":
		return FormatJSONL, nil
	case ".parquet":
		return FormatParquet, nil
	}
	return "", fmt.Errorf("reference file %s: unknown format; name it .csv, .jsonl, .ndjson or .parquet", path)
}

// ReadFile reads the reference file at path with the reader of its format
// (see FormatOf, ReadCSV, ReadJSONL, ReadParquet).
func ReadFile(ctx context.Context, path string, opts ReadOptions, emit func(arrow.Record) error) error {
	format, err := FormatOf(path)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open reference file: %w", err)
	}
	defer f.Close()
	switch format {
	case FormatCSV:
		return ReadCSV(f, path, opts, emit)
	case FormatJSONL:
		return ReadJSONL(f, path, opts, emit)
	}
	return ReadParquet(ctx, f, path, opts, emit)
}

// BuildFromFile builds the profile of the reference file at path (a file
// without rows is an error wrapping ErrBadInput): meta's
// Source defaults to the path, its ID to NewID and its CreatedAt to now;
// opts.Model and ModelVersion default to meta's.
func BuildFromFile(ctx context.Context, path string, meta Meta, opts ReadOptions, bopts BuilderOptions) (*Profile, error) {
	now := time.Now().UTC()
	if meta.Source == "" {
		meta.Source = path
	}
	if meta.CreatedAt.IsZero() {
		meta.CreatedAt = now.Truncate(time.Microsecond)
	}
	if meta.ID == 0 {
		meta.ID = NewID(now)
	}
	if opts.Model == "" {
		opts.Model, opts.ModelVersion = meta.Model, meta.ModelVersion
	}
	b, err := NewBuilder(meta, bopts)
	if err != nil {
		return nil, err
	}
	if err := ReadFile(ctx, path, opts, func(rec arrow.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return b.Add(rec)
	}); err != nil {
		return nil, err
	}
	p, err := b.Finish()
	if err == nil && p.Rows == 0 {
		return nil, fmt.Errorf("%w: %s has no rows", ErrBadInput, path)
	}
	return p, err
}
