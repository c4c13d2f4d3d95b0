package faulttest

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets the four fault tests run at once unless -parallel is given:
// go test's default, GOMAXPROCS, is 2 on a 2-core CI machine, and the tests
// spend most of their time waiting (an outage, a group's session timeout),
// not computing.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", "4"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
