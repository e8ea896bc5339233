//go:build linux

// Command cvmkit-init is the init of cvmkit's initrd. It mounts /dev, /proc
// and /sys, loads the kernel modules the initrd lists, sets up the dm-verity
// device for the root filesystem from the kernel command line, mounts it
// read-only as EROFS and hands over to the target init on it. Any failure
// stops the VM: the guest never runs on an unverified root.
//
// Kernel command line (written by cvmkit build from the image):
//
//	cvmkit.root=DEV                   device holding the EROFS image and, appended, its hash tree
//	cvmkit.hash=DEV                   device holding the hash tree, when it is not appended (default: cvmkit.root)
//	cvmkit.verity=ROOTHASH,SALT,DATA_BLOCKS,HASH_START_BLOCK
//	cvmkit.init=PATH                  the program to run on the new root (default /sbin/init)
//
// The modules to load are listed, one path per line in load order, in
// /lib/modules/cvmkit.load.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "cvmkit-init: error: %v\n", err)
		fmt.Fprintln(os.Stderr, "cvmkit-init: the root filesystem could not be verified; powering off")
		unix.Sync()
		time.Sleep(100 * time.Millisecond)
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		os.Exit(1)
	}
}

type params struct {
	root, hash, init  string
	rootHash, salt    string
	dataBlocks, start uint64
}

func parseCmdline(s string) (*params, error) {
	p := &params{init: "/sbin/init"}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "cvmkit.root":
			p.root = v
		case "cvmkit.hash":
			p.hash = v
		case "cvmkit.init":
			p.init = v
		case "cvmkit.verity":
			parts := strings.Split(v, ",")
			if len(parts) != 4 {
				return nil, fmt.Errorf("cvmkit.verity=%q: want ROOTHASH,SALT,DATA_BLOCKS,HASH_START_BLOCK", v)
			}
			p.rootHash, p.salt = parts[0], parts[1]
			var err error
			if p.dataBlocks, err = strconv.ParseUint(parts[2], 10, 64); err != nil {
				return nil, fmt.Errorf("cvmkit.verity data blocks %q: %w", parts[2], err)
			}
			if p.start, err = strconv.ParseUint(parts[3], 10, 64); err != nil {
				return nil, fmt.Errorf("cvmkit.verity hash start %q: %w", parts[3], err)
			}
		}
	}
	if p.root == "" || p.rootHash == "" {
		return nil, fmt.Errorf("the kernel command line lacks cvmkit.root= and cvmkit.verity=")
	}
	for _, h := range []string{p.rootHash, p.salt} {
		for _, c := range h {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return nil, fmt.Errorf("cvmkit.verity: %q is not lowercase hex", h)
			}
		}
	}
	if p.hash == "" {
		p.hash = p.root
	}
	return p, nil
}

func run() error {
	for _, m := range []struct{ src, dst, fstype string }{{"devtmpfs", "/dev", "devtmpfs"}, {"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fstype, unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mounting %s: %w", m.dst, err)
		}
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	p, err := parseCmdline(string(cmdline))
	if err != nil {
		return err
	}
	if err := loadModules("/lib/modules/cvmkit.load"); err != nil {
		return err
	}
	for _, d := range []string{p.root, p.hash} {
		if err := waitFor(d, 10*time.Second); err != nil {
			return err
		}
	}
	// Table of the dm-verity target (Documentation/admin-guide/device-mapper/verity.rst):
	// version, data and hash devices, block sizes, data blocks, hash start block, algorithm, root hash, salt.
	table := fmt.Sprintf("1 %s %s 4096 4096 %d %d sha256 %s %s", p.root, p.hash, p.dataBlocks, p.start, p.rootHash, p.salt)
	dev, err := createVerity("cvmkit-root", p.dataBlocks*8, table)
	if err != nil {
		return fmt.Errorf("setting up dm-verity: %w", err)
	}
	if err := waitFor(dev, 5*time.Second); err != nil {
		return err
	}
	os.MkdirAll("/newroot", 0o755)
	if err := unix.Mount(dev, "/newroot", "erofs", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mounting the verified root %s: %w (a wrong root hash or a changed image)", dev, err)
	}
	return switchRoot("/newroot", p.init)
}

// loadModules loads each module listed in file, in order.
func loadModules(file string) error {
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		mod := strings.TrimSpace(s.Text())
		if mod == "" || strings.HasPrefix(mod, "#") {
			continue
		}
		m, err := os.Open(mod)
		if err != nil {
			return err
		}
		// Compressed modules are decompressed by the kernel (Linux 6.2+
		// with CONFIG_MODULE_DECOMPRESS); older kernels refuse the flag.
		flags := 0
		if strings.HasSuffix(mod, ".xz") || strings.HasSuffix(mod, ".zst") || strings.HasSuffix(mod, ".gz") {
			flags = unix.MODULE_INIT_COMPRESSED_FILE
		}
		err = unix.FinitModule(int(m.Fd()), "", flags)
		m.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("loading %s: %w", mod, err)
		}
	}
	return s.Err()
}

func waitFor(path string, d time.Duration) error {
	for end := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s did not appear within %v", path, d)
		}
	}
}

// switchRoot moves the pseudo filesystems into the new root, makes it /,
// and executes init there.
func switchRoot(newRoot, init string) error {
	for _, m := range []string{"/dev", "/proc", "/sys"} {
		os.MkdirAll(newRoot+m, 0o755) // fails harmlessly on a read-only root that has them
		if err := unix.Mount(m, newRoot+m, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("moving %s: %w (the root image needs an empty %s folder)", m, err, m)
		}
	}
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(newRoot, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("moving the new root to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	return unix.Exec(init, []string{init}, os.Environ())
}
