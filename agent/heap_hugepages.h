// The agent's heap on transparent huge pages.
//
// On this project's reference VM a page fault costs several microseconds, and loading 100,000
// Services touches ~20,000 fresh 4 KiB heap pages: without huge pages, faulting them in is
// most of the time the store takes (docs/BENCHMARKS.md, "Kubernetes source"). glibc (2.35+)
// backs its heap with transparent huge pages when the tunable glibc.malloc.hugetlb=1 is set,
// but tunables are read only at process start, so the process re-executes itself once with
// the tunable added to GLIBC_TUNABLES.
//
// Nothing happens when: SKIFF_HEAP_HUGEPAGES=0 is set; GLIBC_TUNABLES already names
// glibc.malloc.hugetlb (the operator chose, or this is the re-executed process); the kernel's
// transparent_hugepage mode is "never". If the exec fails the process goes on as it is.
#pragma once

#include <string>

namespace skiff {

// Call first thing in main(), before any thread or file exists. Returns (if it returns at
// all) whether this process's heap is on huge pages; `note` (optional) says why or why not,
// for a log line once logging is set up.
bool ReexecWithHugePageHeap(char** argv, std::string* note = nullptr);

}  // namespace skiff
