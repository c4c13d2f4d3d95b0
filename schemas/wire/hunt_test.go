package wire

import (
	"math/rand"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
)

func TestHuntHang(t *testing.T) {
	var seeds [][]byte
	for _, c := range compressions {
		b := NewBatchBuilder(memory.DefaultAllocator)
		evs := layoutEvents()
		for i := range evs {
			b.Append(&evs[i])
		}
		rec := b.NewRecord()
		data, _ := NewArrowEncoder(c).Encode(nil, rec)
		seeds = append(seeds, data)
	}
	rng := rand.New(rand.NewSource(1))
	done := make(chan []byte)
	for i := 0; i < 300000; i++ {
		in := append([]byte(nil), seeds[rng.Intn(len(seeds))]...)
		for k := rng.Intn(4) + 1; k > 0; k-- {
			switch rng.Intn(3) {
			case 0:
				in[rng.Intn(len(in))] = byte(rng.Intn(256))
			case 1:
				p := rng.Intn(len(in))
				in[p] ^= 1 << rng.Intn(8)
			case 2:
				p := rng.Intn(len(in) - 8)
				v := []byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0x10}
				copy(in[p:], v[:rng.Intn(8)+1])
			}
		}
		go func(in []byte) {
			r, err := DecodeArrow(in, memory.DefaultAllocator)
			if err == nil {
				r.Release()
			}
			done <- in
		}(in)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			os.WriteFile("/tmp/hang.bin", in, 0o644)
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
			t.Fatal("hang")
		}
	}
}
