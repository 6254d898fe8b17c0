"""A kernel without io_uring must get a clear error, not a crash: the daemon is started under a
seccomp filter that makes io_uring_setup(2) fail with ENOSYS, as on a kernel built without it
(or with kernel.io_uring_disabled set), and must exit 1 with a message saying so."""
import ctypes
import os
import platform
import struct
import subprocess
import tempfile
import unittest

from harness import binary

SYS_IO_URING_SETUP = 425  # same number on x86_64 and aarch64
ENOSYS = 38


def deny_io_uring_setup():
    """preexec_fn: install a seccomp filter returning ENOSYS for io_uring_setup, allow the rest."""
    libc = ctypes.CDLL(None, use_errno=True)

    def insn(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)

    prog = b"".join([
        insn(0x20, 0, 0, 0),                          # ld  [nr]
        insn(0x15, 0, 1, SYS_IO_URING_SETUP),         # jeq io_uring_setup ? next : skip one
        insn(0x06, 0, 0, 0x00050000 | ENOSYS),        # ret ERRNO(ENOSYS)
        insn(0x06, 0, 0, 0x7FFF0000),                 # ret ALLOW
    ])
    buf = ctypes.create_string_buffer(prog)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


@unittest.skipUnless(platform.machine() in ("x86_64", "aarch64"), "syscall number known for x86_64/aarch64 only")
class NoIoUringTest(unittest.TestCase):
    def test_clear_error_and_exit_code(self):
        with tempfile.TemporaryDirectory(prefix="ringmail-it-") as tmp:
            p = subprocess.run([binary("ringmail"), "--listen", "127.0.0.1:0", "--spool", os.path.join(tmp, "spool")],
                               preexec_fn=deny_io_uring_setup, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=30)
            out = p.stdout.decode(errors="replace")
            self.assertEqual(p.returncode, 1, out)  # an error exit, not a signal
            self.assertIn("io_uring is not available on this kernel", out)
            self.assertIn("kernel.io_uring_disabled", out)
            self.assertIn("Function not implemented", out)  # the kernel's reason, passed on


if __name__ == "__main__":
    unittest.main()
