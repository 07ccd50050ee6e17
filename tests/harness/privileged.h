// Root-only tests call SKIFF_REQUIRE_PRIVILEGED() first. Without root they skip with a
// message; with SKIFF_REQUIRE_PRIVILEGED=1 in the environment (CI) the skip is a failure,
// so BPF and end-to-end tests cannot silently not run.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace skiff::testing {

inline bool PrivilegedRequired() {
  const char* v = std::getenv("SKIFF_REQUIRE_PRIVILEGED");
  return v && std::string(v) == "1";
}

inline bool HavePrivileges() { return geteuid() == 0; }

}  // namespace skiff::testing

#define SKIFF_REQUIRE_PRIVILEGED()                                                        \
  do {                                                                                    \
    if (!::skiff::testing::HavePrivileges()) {                                            \
      if (::skiff::testing::PrivilegedRequired()) {                                       \
        GTEST_FAIL() << "needs root (BPF/netns), and SKIFF_REQUIRE_PRIVILEGED=1 forbids " \
                        "skipping";                                                       \
      }                                                                                   \
      GTEST_SKIP() << "needs root (BPF/netns); run as root to include this test";         \
    }                                                                                     \
  } while (0)
