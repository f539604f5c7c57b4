"""Other kernels under qemu: Debian's packaged kernels, fetched (never installed) and booted with
TCG, running the project's own FUSE server and op runner on the project's workloads.

  catalog    the kernels (suite, family, the simulator's strategy for it, features found)
  fetch      a private apt configuration per suite; apt-get download + unpack into a cache
  initramfs  a newc cpio with busybox, the static server and runner, fuse.ko, /init
  boot       qemu, the console watch (panic / Oops: retry), the results from ttyS1
  guest      execute(kernel, workload, seed) -> a Run computed like a host mount's
  folios     page-cache folio sizes of a run (tracepoint filemap:mm_filemap_add_to_page_cache)
  features   which FUSE features a kernel carries (kallsyms, sysctls, measured, version)
  ab         interleaved A/B of two kernels, per-pair ratios beside the simulated ones
  validate   `validate --kernel K`: a guest against its strategy (catalog) on its machine profile
  commands   the `kernels` verb

Kept light: the submodules are imported by whoever uses them.
"""
