//go:build linux

package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dmIoctl issues one device-mapper ioctl (linux/dm-ioctl.h): a struct
// dm_ioctl of 312 bytes followed by its data.
func dmIoctl(fd uintptr, cmd uintptr, name string, flags uint32, data []byte) ([]byte, error) {
	const hdr = unix.SizeofDmIoctl
	buf := make([]byte, hdr+len(data)+16384) // room for the kernel's answer
	// The interface version we need: major 4, and no feature past 4.0 (the
	// kernel refuses a newer minor than its own).
	binary.LittleEndian.PutUint32(buf[0:], unix.DM_VERSION_MAJOR)
	binary.LittleEndian.PutUint32(buf[12:], uint32(len(buf))) // data_size
	binary.LittleEndian.PutUint32(buf[16:], hdr)              // data_start
	if len(data) > 0 {
		binary.LittleEndian.PutUint32(buf[20:], 1) // target_count
	}
	binary.LittleEndian.PutUint32(buf[28:], flags)
	copy(buf[48:48+127], name)
	copy(buf[hdr:], data)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, cmd, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		return nil, errno
	}
	return buf, nil
}

// createVerity creates a read-only device-mapper device with one verity
// target of sectors 512-byte sectors and returns its /dev/dm-N path.
func createVerity(name string, sectors uint64, table string) (string, error) {
	ctl, err := os.OpenFile("/dev/mapper/control", os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer ctl.Close()
	fd := ctl.Fd()
	res, err := dmIoctl(fd, unix.DM_DEV_CREATE, name, 0, nil)
	if err != nil {
		return "", fmt.Errorf("DM_DEV_CREATE: %w", err)
	}
	dev := binary.LittleEndian.Uint64(res[40:])
	// struct dm_target_spec {u64 sector_start, length; s32 status; u32 next; char target_type[16]} + params.
	spec := make([]byte, unix.SizeofDmTargetSpec)
	binary.LittleEndian.PutUint64(spec[8:], sectors)
	copy(spec[24:], "verity")
	params := append([]byte(table), 0)
	for (len(spec)+len(params))%8 != 0 {
		params = append(params, 0)
	}
	binary.LittleEndian.PutUint32(spec[20:], uint32(len(spec)+len(params))) // next
	if _, err := dmIoctl(fd, unix.DM_TABLE_LOAD, name, unix.DM_READONLY_FLAG, append(spec, params...)); err != nil {
		return "", fmt.Errorf("DM_TABLE_LOAD (verity %s): %w", table, err)
	}
	if _, err := dmIoctl(fd, unix.DM_DEV_SUSPEND, name, 0, nil); err != nil { // resume
		return "", fmt.Errorf("DM_DEV_SUSPEND (resume): %w", err)
	}
	minor := (dev & 0xff) | ((dev >> 12) & 0xfff00)
	return fmt.Sprintf("/dev/dm-%d", minor), nil
}
