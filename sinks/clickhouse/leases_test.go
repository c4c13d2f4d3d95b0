package clickhouse

import "testing"

// Takeovers number the epochs in order; two takers of the same epoch agree
// on the holder (the larger member).
func TestIntegrationLeases(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	l := s.Leases()
	if h, err := l.Holder(ctx, "alerts/g"); err != nil || h.Epoch != 0 {
		t.Fatalf("holder of a new scope = %+v, %v", h, err)
	}
	steps := []struct {
		member    string
		wantEpoch uint64
		wantPrev  string
	}{{"a", 1, ""}, {"b", 2, "a"}, {"a", 3, "b"}}
	for i, st := range steps {
		taken, prev, err := l.Take(ctx, "alerts/g", st.member, int64(10+i))
		if err != nil {
			t.Fatal(err)
		}
		h, err := l.Holder(ctx, "alerts/g")
		if err != nil {
			t.Fatal(err)
		}
		if taken.Epoch != st.wantEpoch || prev.Member != st.wantPrev || h != taken {
			t.Errorf("take by %s: taken %+v, previous %+v, holder %+v; want epoch %d after %q", st.member, taken, prev, h, st.wantEpoch, st.wantPrev)
		}
	}
	// A race: c and b both read epoch 3 and write 4 (written here by hand as
	// the second taker would).
	if _, _, err := l.Take(ctx, "alerts/g", "b", 20); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().Exec(ctx, "INSERT INTO "+s.Database()+".vigil_leases (scope, epoch, member, generation, taken_at) SELECT 'alerts/g', 4, 'c', 20, now()"); err != nil {
		t.Fatal(err)
	}
	if h, err := l.Holder(ctx, "alerts/g"); err != nil || h.Epoch != 4 || h.Member != "c" {
		t.Errorf("holder after a tie = %+v, %v; want c at epoch 4", h, err)
	}
	if h, err := l.Holder(ctx, "alerts/other"); err != nil || h.Epoch != 0 {
		t.Errorf("another scope = %+v, %v", h, err)
	}
}
