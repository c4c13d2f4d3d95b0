package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/backoff"
)

func TestTruncateDeadLetter(t *testing.T) {
	d := &deadLetters{topic: "t.dlq", maxBytes: 1048588}
	src := kafka.Message{Topic: "t", Partition: 2, Offset: 7, Key: []byte("fraud"),
		Headers: []kafka.Header{{Key: "vigil-encoding", Value: []byte("json")}}}
	for _, tt := range []struct {
		name      string
		value     int
		ownHeader int // bytes of one extra header of the source message
		limit     int
		wantKey   bool
	}{
		{"5MB into 1MB", 5 << 20, 0, d.fits(), true},
		{"smaller than the limit", 1000, 0, d.fits(), true},
		{"headers only", 5 << 20, 0, 0, false},
		{"huge own headers are dropped", 5 << 20, 900 << 10, d.fits(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := src
			m.Value = bytes.Repeat([]byte{'x', 'y'}, tt.value/2)
			m.Headers = append([]kafka.Header(nil), src.Headers...)
			if tt.ownHeader > 0 {
				m.Headers = append(m.Headers, kafka.Header{Key: "big", Value: make([]byte, tt.ownHeader)})
			}
			dl := deadLetterMessage(&m, d.topic, "unexpected end of JSON")
			tr := d.truncate(&dl, "too large", tt.limit)
			sum := sha256.Sum256(m.Value)
			kept, _ := strconv.Atoi(header(&tr, HeaderKeptBytes))
			if got := messageSize(&tr); got > max(tt.limit, 1024) {
				t.Errorf("truncated size %d > limit %d", got, tt.limit)
			}
			for k, want := range map[string]string{
				HeaderTruncated:       "too large",
				HeaderOriginalSize:    strconv.Itoa(len(m.Value)),
				HeaderOriginalSHA256:  hex.EncodeToString(sum[:]),
				HeaderError:           "unexpected end of JSON",
				HeaderSourceTopic:     "t",
				HeaderSourcePartition: "2",
				HeaderSourceOffset:    "7",
			} {
				if got := header(&tr, k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if kept != len(tr.Value) || !bytes.Equal(tr.Value, m.Value[:kept]) {
				t.Errorf("kept header %d, value %d bytes: want the value's first bytes", kept, len(tr.Value))
			}
			if tt.limit > 0 && tt.ownHeader == 0 && kept < min(len(m.Value), tt.limit-1024) {
				t.Errorf("kept only %d bytes of %d within a limit of %d", kept, len(m.Value), tt.limit)
			}
			if tt.limit == 0 && kept != 0 {
				t.Errorf("kept %d bytes, want 0", kept)
			}
			if (tr.Key != nil) != tt.wantKey {
				t.Errorf("key %q, want kept: %v", tr.Key, tt.wantKey)
			}
		})
	}
}

func TestFailureClassification(t *testing.T) {
	for _, tt := range []struct {
		err                   error
		retryable, permanentP bool // kafkaRetryable, permanentProduce
	}{
		{kafka.NotLeaderForPartition, true, false},
		{kafka.LeaderNotAvailable, true, false},
		{fmt.Errorf("fetch: %w", kafka.RequestTimedOut), true, false},
		{kafka.MessageSizeTooLarge, false, true},
		{kafka.MessageTooLargeError{}, false, true},
		{kafka.WriteErrors{kafka.MessageSizeTooLarge}, false, true},
		{kafka.WriteErrors{nil, kafka.MessageSizeTooLarge, kafka.NotLeaderForPartition}, false, false},
		{kafka.TopicAuthorizationFailed, false, true},
		{kafka.InvalidRecord, false, true},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false, false},
		{fmt.Errorf("dial: %w", &netErr{}), true, false},
		{backoff.Permanent(errors.New("bad")), false, true},
		{nil, false, false},
	} {
		if got := kafkaRetryable(tt.err); got != tt.retryable {
			t.Errorf("kafkaRetryable(%v) = %v, want %v", tt.err, got, tt.retryable)
		}
		if got := permanentProduce(tt.err); got != tt.permanentP {
			t.Errorf("permanentProduce(%v) = %v, want %v", tt.err, got, tt.permanentP)
		}
	}
}

type netErr struct{}

func (*netErr) Error() string   { return "i/o timeout" }
func (*netErr) Timeout() bool   { return true }
func (*netErr) Temporary() bool { return true }
