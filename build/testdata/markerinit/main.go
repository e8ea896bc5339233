//go:build linux

// Command markerinit is the target init of cvmkit's boot test: it runs on
// the verified root, prints the marker file and every file's size, and
// powers the VM off.
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

func main() {
	marker, err := os.ReadFile("/etc/cvmkit-marker")
	if err != nil {
		fmt.Printf("CVMKIT-BOOT-ERROR: %v\n", err)
	} else {
		fmt.Printf("CVMKIT-MARKER: %s\n", marker)
	}
	files, errs := 0, 0
	filepath.WalkDir("/data", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if _, err := os.ReadFile(p); err != nil {
				errs++
				fmt.Printf("CVMKIT-READ-ERROR: %s: %v\n", p, err)
			}
			files++
		}
		return nil
	})
	fmt.Printf("CVMKIT-READ: files=%d errors=%d\n", files, errs)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
