"""Real kernels: this machine's FUSE mount (mount, calibrate, validate, traces, programs)
and other kernels booted under qemu."""
