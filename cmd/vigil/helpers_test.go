package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// startTestSink starts a sink on the real ClickHouse in a fresh database
// named prefix_<random>, dropped when the test ends.
func startTestSink(t *testing.T, prefix string) (*clickhouse.Sink, string) {
	t.Helper()
	return testsink.Start(t, prefix)
}

// openTestDatabase opens a connection to the real ClickHouse at addr for a
// test whose binaries write to database db; the database is dropped and the
// connection closed when the test ends.
func openTestDatabase(t *testing.T, addr, db string) driver.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	return conn
}

// topicEnd is the sum over the partitions of topic of their end offsets
// (the offset after the last message).
func topicEnd(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	// A transport of its own: kafka-go's default one is shared by the test
	// binary and answers from metadata it cached (up to 6s) before the
	// topic existed.
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	resp, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	var n int64
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		n += po.LastOffset
	}
	return n
}

// checkpointedOffsets is the sum over the partitions of topic of the next
// offsets group's processor checkpointed in database db (-1 when the query
// fails).
func checkpointedOffsets(conn driver.Conn, db, group, topic string) int64 {
	var n int64
	err := conn.QueryRow(context.Background(), fmt.Sprintf(
		"SELECT toInt64(sum(next_offset)) FROM %s.vigil_checkpoints FINAL WHERE consumer_group = ? AND topic = ?", db),
		group, topic).Scan(&n)
	if err != nil {
		return -1
	}
	return n
}

// waitCheckpointed waits until group's processor has checkpointed every
// message of topic, which no one writes to any more. The processor writes
// a checkpoint's tables one after the other (raw events, model windows,
// feature windows) and the checkpoint row last: once that row covers the
// topic, every table holds all of it, so a test reads them once, exactly,
// instead of polling one table and hoping the next one has caught up.
func waitCheckpointed(t *testing.T, conn driver.Conn, db string, brokers []string, group, topic string) {
	t.Helper()
	end := topicEnd(t, brokers, topic)
	var got int64
	for deadline := time.Now().Add(checkpointWait); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = checkpointedOffsets(conn, db, group, topic); got == end {
			return
		}
	}
	t.Fatalf("the processor of group %s checkpointed %d of the %d messages of %s within %v", group, got, end, topic, checkpointWait)
}

// checkpointWait bounds the waits for a processor to catch up: generous,
// for a machine whose cores other test binaries share (CI runs packages
// side by side).
const checkpointWait = 120 * time.Second
