// Test-only TLS material and scratch directories for the Kubernetes source tests: a CA, a
// server certificate for 127.0.0.1 and a client certificate, made with the openssl CLI into a
// temporary directory that is removed when the object goes away (even when a test fails).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace skiff::testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& contents) const;  // -> path

 private:
  std::string path_;
};

struct TestPki {
  std::string ca_cert, server_cert, server_key, client_cert, client_key;  // file paths
};

// Generates EC P-256 keys and certificates valid for one day into dir.
absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

std::string ReadFileOrDie(const std::string& path);

}  // namespace skiff::testing
