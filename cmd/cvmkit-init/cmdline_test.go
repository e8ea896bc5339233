//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	root := strings.Repeat("ab", 32)
	p, err := parseCmdline("console=ttyS0 cvmkit.root=/dev/vda cvmkit.verity=" + root + "," + root + ",2,3 cvmkit.init=/bin/app\n")
	if err != nil || p.root != "/dev/vda" || p.hash != "/dev/vda" || p.dataBlocks != 2 || p.start != 3 || p.init != "/bin/app" {
		t.Fatalf("%+v, %v", p, err)
	}
	p, err = parseCmdline("cvmkit.root=/dev/vda cvmkit.hash=/dev/vdb cvmkit.verity=" + root + "," + root + ",2,1")
	if err != nil || p.hash != "/dev/vdb" || p.init != "/sbin/init" {
		t.Fatalf("%+v, %v", p, err)
	}
	for _, bad := range []string{
		"", "cvmkit.root=/dev/vda", "cvmkit.verity=" + root + "," + root + ",2,3",
		"cvmkit.root=/dev/vda cvmkit.verity=" + root + "," + root + ",2",
		"cvmkit.root=/dev/vda cvmkit.verity=" + root + "," + root + ",x,3",
		"cvmkit.root=/dev/vda cvmkit.verity=" + strings.ToUpper(root) + "," + root + ",2,3",
		"cvmkit.root=/dev/vda cvmkit.verity=" + root + ",salt;rm,2,3",
	} {
		if _, err := parseCmdline(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// FuzzParseCmdline: any command line gives parameters or an error; accepted
// parameters never carry characters that could change the dm-verity table.
func FuzzParseCmdline(f *testing.F) {
	f.Add("cvmkit.root=/dev/vda cvmkit.verity=" + strings.Repeat("0", 64) + ",00,1,2")
	f.Add("cvmkit.root=/dev/vda cvmkit.hash=/dev/vdb cvmkit.verity=ab,cd,1,1 cvmkit.init=/x")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseCmdline(s)
		if err != nil {
			return
		}
		for _, v := range []string{p.root, p.hash, p.rootHash, p.salt} {
			if strings.ContainsAny(v, " \t\n") || v == "" && v != p.salt {
				t.Fatalf("accepted %q as a table field (from %q)", v, s)
			}
		}
	})
}
