#!/usr/bin/env python3
"""Independent computation of the TDX vectors in qemu_cmdline_vectors.json.

This program shares no code with cvmkit (it uses only the Python standard
library). It was written from the sources it cites:

* QEMU hw/i386/x86-common.c x86_load_linux: the setup-header patch (loader
  type, heap, cmd_line_ptr, initrd address and size, and vid_mode for the
  first "vga=" in the command line, parsed as normal/ext/ask prefixes or by
  qemu_strtoui(..., 0) in util/cutils.c over strtoull), and QEMU's exit on a
  vga= value it cannot parse. hw/i386/pc_q35.c: the below-4 GiB RAM split.
* edk2 OvmfPkg/Library/X86QemuLoadImageLib: LoadOptions = the command line
  widened one byte to one CHAR16 ("%a" in UnicodeSPrintAsciiFormat) plus a
  NUL CHAR16; " initrd=initrd" appended when there is an initrd (before
  edk2-stable202508).
* Microsoft's Authenticode PE hash (headers without CheckSum and the
  certificate-table entry, sections in file order, trailing data without the
  certificate table), as edk2's DxeTpm2MeasureBootLib measures it, SHA-384.
* RTMR1 for a bzImage with edk2-stable202502: the kernel's Authenticode
  digest, EV_EFI_ACTION "Calling EFI Application from Boot Option", the
  ReadyToBoot separator (SHA-384 of four zero bytes), and the two Exit Boot
  Services actions; RTMR2 for a measuring kernel: SHA-384 of LoadOptions,
  then of the initrd. Extend: R = SHA-384(R || digest), R starting at zero.

Usage: qemu_cmdline_vectors.py SHARED_DIR > qemu_cmdline_vectors.json
"""
import hashlib
import json
import os
import struct
import sys

KERNEL = "fixtures/tdx/kernel/debian-linux-image-6.1.0-56-amd64_6.1.192-2/vmlinuz-6.1.0-56-amd64"
INITRD = "fixtures/tdx/initrd/pattern-3MiB.img"


class QemuExit(Exception):
    pass


def c_strtoull(s):
    """glibc strtoull(s, &end, 0): (value, end index, erange, no_digits)."""
    i = 0
    while i < len(s) and s[i] in " \t\n\v\f\r":
        i += 1
    neg = False
    if i < len(s) and s[i] in "+-":
        neg = s[i] == "-"
        i += 1
    base = 10
    if s[i:i + 2].lower() == "0x" and i + 2 < len(s) and s[i + 2] in "0123456789abcdefABCDEF":
        base, i = 16, i + 2
    elif s[i:i + 1] == "0":
        base = 8
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:base]
    j = i
    while j < len(s) and s[j].lower() in digits:
        j += 1
    if j == i:
        return 0, 0, False, True
    mag = int(s[i:j], base)
    if mag >= 1 << 64:
        return (1 << 64) - 1, j, True, False
    return ((-mag) % (1 << 64)) if neg else mag, j, False, False


def qemu_strtoui(s):
    """QEMU util/cutils.c qemu_strtoui(s, &end, 0, &v): (v, end) or raise."""
    v, end, erange, none = c_strtoull(s)
    if none or erange:
        raise QemuExit("qemu: invalid 'vga=' kernel parameter.")
    neg = "-" in s[:end]
    if neg:
        v = (-v) % (1 << 64)
    if v > 0xFFFFFFFF:
        raise QemuExit("qemu: invalid 'vga=' kernel parameter.")
    return ((-v) % (1 << 32)) if neg else v, end


def vid_mode(cmdline):
    at = cmdline.find("vga=")
    if at < 0:
        return None
    v = cmdline[at + 4:]
    if v.startswith("normal"):
        return 0xFFFF
    if v.startswith("ext"):
        return 0xFFFE
    if v.startswith("ask"):
        return 0xFFFD
    n, end = qemu_strtoui(v)
    if end < len(v) and v[end] != " ":
        raise QemuExit("qemu: invalid 'vga=' kernel parameter.")
    return n & 0xFFFF


def below_4g(ram):
    lowmem = 0x80000000 if ram >= 0xB0000000 else 0xB0000000
    return min(ram, lowmem)


def qemu_patch(kernel, cmdline, initrd_size, ram):
    h = bytearray(kernel)
    protocol = struct.unpack_from("<H", h, 0x206)[0]
    if protocol < 0x200 or not (h[0x211] & 1):
        real, cmd = 0x90000, 0x9A000 - ((len(cmdline.encode()) + 16) & ~15)
    elif protocol < 0x202:
        real, cmd = 0x90000, 0x9A000 - ((len(cmdline.encode()) + 16) & ~15)
    else:
        real, cmd = 0x10000, 0x20000
    if protocol >= 0x20C and struct.unpack_from("<H", h, 0x236)[0] & 2:
        initrd_max = 0xFFFFFFFF
    elif protocol >= 0x203:
        initrd_max = struct.unpack_from("<I", h, 0x22C)[0]
    else:
        initrd_max = 0x37FFFFFF
    acpi = 0x28000
    if initrd_max >= below_4g(ram) - acpi:
        initrd_max = below_4g(ram) - acpi - 1
    if protocol >= 0x202:
        struct.pack_into("<I", h, 0x228, cmd)
    mode = vid_mode(cmdline)
    if mode is not None:
        struct.pack_into("<H", h, 0x1FA, mode)
    if protocol >= 0x200:
        h[0x210] = 0xB0
    if protocol >= 0x201:
        h[0x211] |= 0x80
        struct.pack_into("<H", h, 0x224, (cmd - real - 0x200) & 0xFFFF)
    if initrd_size is not None:
        addr = (initrd_max - initrd_size) & ~4095
        struct.pack_into("<I", h, 0x218, addr)
        struct.pack_into("<I", h, 0x21C, initrd_size)
    return bytes(h), mode


def authenticode_sha384(pe):
    lfanew = struct.unpack_from("<I", pe, 0x3C)[0]
    assert pe[lfanew:lfanew + 4] == b"PE\0\0"
    coff = lfanew + 4
    nsect, opt_size = struct.unpack_from("<H", pe, coff + 2)[0], struct.unpack_from("<H", pe, coff + 16)[0]
    opt = coff + 20
    magic = struct.unpack_from("<H", pe, opt)[0]
    dirs = opt + (112 if magic == 0x20B else 96)
    checksum = opt + 64
    cert_entry = dirs + 4 * 8
    size_of_headers = struct.unpack_from("<I", pe, opt + 60)[0]
    cert_off, cert_size = struct.unpack_from("<II", pe, cert_entry)
    h = hashlib.sha384()
    h.update(pe[:checksum])
    h.update(pe[checksum + 4:cert_entry])
    h.update(pe[cert_entry + 8:size_of_headers])
    hashed = size_of_headers
    sections = []
    for i in range(nsect):
        s = opt + opt_size + 40 * i
        raw_size, raw_ptr = struct.unpack_from("<II", pe, s + 16)
        if raw_size:
            sections.append((raw_ptr, raw_size))
    for ptr, size in sorted(sections):
        h.update(pe[ptr:ptr + size])
        hashed += size
    if len(pe) > hashed:
        h.update(pe[hashed:len(pe) - cert_size])
    return h.digest()


def sha384(b):
    return hashlib.sha384(b).digest()


def fold(digests):
    r = bytes(48)
    for d in digests:
        r = sha384(r + d)
    return r


def load_options(opts):
    return b"".join(bytes([c, 0]) for c in opts.encode("utf-8")) + b"\0\0"


def self_check(shared):
    """Agree with the shared independent vectors (vectors/tdx.json) on every
    patched-kernel Authenticode digest and on RTMR1 for edk2-stable202502,
    before computing anything new."""
    data = json.load(open(os.path.join(shared, "vectors/tdx.json")))
    n = 0
    for v in data["vectors"] if isinstance(data, dict) else data:
        p = v["params"]
        if v["kind"] not in ("kernel_authenticode", "rtmr1") or p.get("edk2_profile", "edk2-stable202502") != "edk2-stable202502":
            continue
        k = open(os.path.join(shared, p["kernel"]), "rb").read()
        patch = p.get("qemu_header_patch") if v["kind"] == "kernel_authenticode" else p.get("kernel_blob") != "unpatched"
        if patch:
            size = len(open(os.path.join(shared, p["initrd"]), "rb").read()) if p.get("initrd") else None
            k, _ = qemu_patch(k, p.get("cmdline", ""), size, p["memory_mib"] << 20)
        d = authenticode_sha384(k)
        if v["kind"] == "kernel_authenticode":
            got = d.hex()
        else:
            got = fold([d] + [sha384(a) if a else sha384(bytes(4)) for a in ACTIONS]).hex()
        want = v["expected"] if isinstance(v["expected"], str) else v["expected"].get("rtmr1")
        if got != want:
            raise SystemExit("self-check: %s: %s, want %s" % (v["id"], got, want))
        n += 1
    if n < 4:
        raise SystemExit("self-check: only %d shared vectors checked" % n)
    sys.stderr.write("self-check: agrees with %d shared vectors\n" % n)
    return n


ACTIONS = [b"Calling EFI Application from Boot Option", None, b"Exit Boot Services Invocation", b"Exit Boot Services Returned with Success"]


def main():
    shared = sys.argv[1]
    checked = self_check(shared)
    kernel = open(os.path.join(shared, KERNEL), "rb").read()
    initrd = open(os.path.join(shared, INITRD), "rb").read()
    vectors = []
    rtmr1_cases = [
        ("vga=ask", "vga=ask", 4 << 30, False),
        ("vga=0x317 after console", "console=ttyS0 vga=0x317", 4 << 30, False),
        ("novga=0x10 (QEMU matches inside the word)", "novga=0x10 console=ttyS0", 4 << 30, False),
        ("vga=normal", "vga=normal", 2 << 30, False),
        ("vga=extra is ext", "vga=extra", 2 << 30, False),
        ("octal vga=0317", "vga=0317", 2 << 30, False),
        ("negative vga=-1 wraps", "vga=-1", 2 << 30, False),
        ("vga=791 with initrd, 4 GiB", "console=ttyS0 vga=791 quiet", 4 << 30, True),
        ("only the first vga= counts", "vga=ask vga=0x317", 2 << 30, False),
    ]
    for name, cmdline, ram, with_initrd in rtmr1_cases:
        patched, mode = qemu_patch(kernel, cmdline, len(initrd) if with_initrd else None, ram)
        kd = authenticode_sha384(patched)
        ev = [kd] + [sha384(a) if a else sha384(bytes(4)) for a in ACTIONS]
        vectors.append({
            "name": name, "cmdline": cmdline, "memory_mib": ram >> 20, "initrd": INITRD if with_initrd else "",
            "vid_mode": "%#06x" % mode, "kernel_authenticode": kd.hex(), "rtmr1": fold(ev).hex(),
        })
    for name, cmdline, with_initrd in [
        ("ASCII baseline", "console=ttyS0 root=/dev/vda", False),
        ("Latin-1 letter in UTF-8 (café)", "console=ttyS0 café", False),
        ("CJK and emoji, 3- and 4-byte UTF-8", "root=/dev/vda 模型=🚀", False),
        ("non-ASCII with initrd", "ü initrd-test", True),
    ]:
        opts = cmdline + (" initrd=initrd" if with_initrd else "")
        lo = load_options(opts)
        ev = [sha384(lo)] + ([sha384(initrd)] if with_initrd else [])
        vectors.append({
            "name": name, "cmdline": cmdline, "memory_mib": 2048, "initrd": INITRD if with_initrd else "",
            "load_options_size": len(lo), "load_options_sha384": sha384(lo).hex(), "rtmr2": fold(ev).hex(),
        })
    refused = []
    for cmdline in ["vga=bogus", "vga=0x", "vga=", "vga=4294967296", "vga=791,keep", "vga=12\tquiet", "console=ttyS0 novga=x"]:
        try:
            vid_mode(cmdline)
            raise SystemExit("expected QEMU to refuse %r" % cmdline)
        except QemuExit as e:
            refused.append({"cmdline": cmdline, "qemu": str(e)})
    json.dump({
        "generator": "measure/tdx/testdata/qemu_cmdline_vectors.py (Python standard library only; shares no code with cvmkit)",
        "self_check": "agrees with %d shared vectors (vectors/tdx.json) first" % checked,
        "kernel": KERNEL, "kernel_sha256": hashlib.sha256(kernel).hexdigest(),
        "qemu_version": "9.2.0", "edk2_profile": "edk2-stable202502", "kernel_blob": "qemu-patched",
        "vectors": vectors, "refused": refused,
    }, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
