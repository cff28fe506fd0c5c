package configs

import "testing"

func TestRequestAddress(t *testing.T) {
	for _, v := range []AddressMode{AddressTry, AddressRequire, AddressNever} {
		text := "[wan]\ninterface = \"wan0\"\nrequest_address = \"" + string(v) + "\"\n[nat]\ninternal_prefix = \"fd00:aaaa:bbbb:cc00::/56\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n"
		c, err := Parse("t.toml", []byte(text))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if got := c.WAN().RequestAddress; got != v {
			t.Errorf("request_address %q parsed as %q", v, got)
		}
	}
}
