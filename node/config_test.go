package node

import "testing"

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]string{"30d": "30d", "12h": "12h0m0s", "1.5d": "36h0m0s", "90m": "1h30m0s"} {
		d, err := ParseDuration(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "10", "5y"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}
