package tdx

import (
	"encoding/binary"
	"fmt"
)

// QEMU's fw_cfg file names for the ACPI blobs.
const (
	fileTables = "etc/acpi/tables"
	fileRSDP   = "etc/acpi/rsdp"
)

// ACPI is what OVMF downloads from QEMU's fw_cfg and measures into RTMR0
// (OvmfPkg/AcpiPlatformDxe/QemuFwCfgAcpi.c: each blob hashed as
// downloaded, before pointers and checksums are patched): the linker/loader
// script "etc/table-loader", then each ALLOCATEd blob in script order.
type ACPI struct {
	TableLoader []byte
	RSDP        []byte
	Tables      []byte
}

// DeriveACPI rebuilds the table-loader script and the RSDP that QEMU
// generates alongside an etc/acpi/tables blob for a q35 machine
// (hw/i386/acpi-build.c, hw/acpi/bios-linker-loader.c): both follow from
// the tables' layout, so only the tables blob has to come from a reference
// launch (docs/measure-tdx.md says how to dump it).
//
// The blob must start with the FACS and hold ACPI tables back to back, the
// last being the RSDT; FADT pointers (FIRMWARE_CTRL, DSDT, X_DSDT) and every
// RSDT entry become ADD_POINTER commands, every table but the FACS an
// ADD_CHECKSUM, in blob order, as QEMU emits them.
func DeriveACPI(tables []byte) (*ACPI, error) {
	type table struct {
		sig         string
		off, length int
	}
	var tbls []table
	for off := 0; off+8 <= len(tables); {
		sig := string(tables[off : off+4])
		if sig == "\x00\x00\x00\x00" {
			break
		}
		n := int(binary.LittleEndian.Uint32(tables[off+4:]))
		min := 36
		if sig == "FACS" {
			min = 64
		}
		if n < min || off+n > len(tables) {
			return nil, fmt.Errorf("ACPI table %q at %#x has length %d, outside %d..%d", printable(sig), off, n, min, len(tables)-off)
		}
		tbls = append(tbls, table{sig, off, n})
		off += n
	}
	if len(tbls) < 3 || tbls[0].sig != "FACS" || tbls[len(tbls)-1].sig != "RSDT" {
		return nil, fmt.Errorf("the ACPI tables blob must start with a FACS and end with an RSDT (found %d tables); give QEMU's etc/acpi/tables", len(tbls))
	}
	var facs, dsdt = tbls[0].off, -1
	for _, t := range tbls {
		if t.sig == "DSDT" {
			dsdt = t.off
		}
	}
	var cmds []byte
	cmd := func(c [128]byte) { cmds = append(cmds, c[:]...) }
	allocate := func(file string, align uint32, zone byte) {
		var c [128]byte
		binary.LittleEndian.PutUint32(c[0:], 1) // BIOS_LINKER_LOADER_COMMAND_ALLOCATE
		copy(c[4:60], file)
		binary.LittleEndian.PutUint32(c[60:], align)
		c[64] = zone
		cmd(c)
	}
	pointer := func(dst, src string, off uint32, size byte) {
		var c [128]byte
		binary.LittleEndian.PutUint32(c[0:], 2) // ADD_POINTER
		copy(c[4:60], dst)
		copy(c[60:116], src)
		binary.LittleEndian.PutUint32(c[116:], off)
		c[120] = size
		cmd(c)
	}
	checksum := func(file string, start, length int) {
		var c [128]byte
		binary.LittleEndian.PutUint32(c[0:], 3) // ADD_CHECKSUM
		copy(c[4:60], file)
		binary.LittleEndian.PutUint32(c[60:], uint32(start+9)) // the header's checksum byte
		binary.LittleEndian.PutUint32(c[64:], uint32(start))
		binary.LittleEndian.PutUint32(c[68:], uint32(length))
		cmd(c)
	}
	allocate(fileRSDP, 16, 2)   // BIOS_LINKER_LOADER_ALLOC_ZONE_FSEG
	allocate(fileTables, 64, 1) // BIOS_LINKER_LOADER_ALLOC_ZONE_HIGH
	rsdt := tbls[len(tbls)-1]
	for _, t := range tbls[1:] {
		switch t.sig {
		case "FACP":
			// FIRMWARE_CTRL → FACS, DSDT → DSDT, X_DSDT (FADT rev ≥ 3) → DSDT.
			if binary.LittleEndian.Uint32(tables[t.off+36:]) != uint32(facs) || dsdt < 0 {
				return nil, fmt.Errorf("the FADT at %#x does not point at the FACS and DSDT of this blob", t.off)
			}
			pointer(fileTables, fileTables, uint32(t.off+36), 4)
			pointer(fileTables, fileTables, uint32(t.off+40), 4)
			if t.length >= 148 {
				pointer(fileTables, fileTables, uint32(t.off+140), 8)
			}
		case "RSDT":
			for e := t.off + 36; e+4 <= t.off+t.length; e += 4 {
				pointer(fileTables, fileTables, uint32(e), 4)
			}
		case "XSDT", "FACS":
			return nil, fmt.Errorf("ACPI table %s at %#x: this layout is not QEMU's q35 one", t.sig, t.off)
		}
		checksum(fileTables, t.off, t.length)
	}
	// RSDP (ACPI 1.0, 20 bytes) as QEMU builds it: "RSD PTR ", checksum 0
	// until the loader patches it, OEM "BOCHS ", revision 0, RSDT offset.
	rsdp := make([]byte, 20)
	copy(rsdp, "RSD PTR ")
	copy(rsdp[9:], "BOCHS ")
	binary.LittleEndian.PutUint32(rsdp[16:], uint32(rsdt.off))
	pointer(fileRSDP, fileTables, 16, 4)
	var c [128]byte
	binary.LittleEndian.PutUint32(c[0:], 3)
	copy(c[4:60], fileRSDP)
	binary.LittleEndian.PutUint32(c[60:], 8)
	binary.LittleEndian.PutUint32(c[68:], 20)
	cmd(c)
	// QEMU pads the script to a multiple of 4 KiB (ACPI_BUILD_ALIGN_SIZE).
	loader := make([]byte, (len(cmds)+4095)/4096*4096)
	copy(loader, cmds)
	return &ACPI{TableLoader: loader, RSDP: rsdp, Tables: tables}, nil
}

func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
